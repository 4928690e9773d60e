// Turns the text values pgoutput sends into exactly what `to_jsonb` makes of them, which is
// what the outbox's capture trigger stores (`to_jsonb(NEW)`) and what Supabase puts in a
// change's `record`: numbers as JSON numbers (NaN and Infinity as strings), booleans,
// json/jsonb parsed, timestamps in XSD form (`2024-01-01T00:00:00+00:00`), everything else
// as its output text. The common types are converted here; arrays, composites, types with
// a cast to json (hstore, ...) and BC dates are cast by PostgreSQL itself, one query per
// batch, so the two capture modes never disagree on a value.
//
// The replication connection runs with DateStyle=ISO, TimeZone=UTC and bytea_output=hex
// (see reader.ts), the forms these conversions expect.
import type { Queryable } from '../database.js';

/** A tuple as pgoutput sends it: text, null, or undefined for an unchanged TOASTed value it did not send. */
export type RawTuple = Record<string, string | null | undefined>;

type Kind = 'bool' | 'number' | 'json' | 'timestamptz' | 'timestamp' | 'date' | 'text' | 'database';

/** Built-in types whose to_jsonb form is known without asking (pg_type oids). */
const BUILTIN: ReadonlyMap<number, Kind> = new Map<number, Kind>([
  [16, 'bool'],
  [20, 'number'],
  [21, 'number'],
  [23, 'number'],
  [700, 'number'],
  [701, 'number'],
  [1700, 'number'],
  [114, 'json'],
  [3802, 'json'],
  [1114, 'timestamp'],
  [1184, 'timestamptz'],
  [1082, 'date'],
  ...[17, 18, 19, 25, 26, 1042, 1043, 2950, 1083, 1266, 1186, 869, 650, 829, 774, 790, 1560, 1562, 3614, 3615, 142].map((oid): [number, Kind] => [oid, 'text']),
]);

/** First normal object id: types below it are PostgreSQL's own. */
const FIRST_NORMAL_OID = 16384;

const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const TIMESTAMPTZ = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(?::(\d\d))?(?::(\d\d))?$/;
const TIMESTAMP = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)$/;
const DATE = /^\d{4,}-\d\d-\d\d$/;

/** The to_jsonb form of `text` for a known kind, or undefined when PostgreSQL must convert it. */
function convert(kind: Kind, text: string): unknown {
  switch (kind) {
    case 'bool':
      return text === 't' || text === 'true';
    case 'number':
      return JSON_NUMBER.test(text) ? Number(text) : text;
    case 'json':
      return JSON.parse(text) as unknown;
    case 'timestamptz': {
      if (text === 'infinity' || text === '-infinity') return text;
      const m = TIMESTAMPTZ.exec(text);
      return m ? `${m[1]}T${m[2]}${m[3]}:${m[4] ?? '00'}${m[5] ? `:${m[5]}` : ''}` : undefined;
    }
    case 'timestamp': {
      if (text === 'infinity' || text === '-infinity') return text;
      const m = TIMESTAMP.exec(text);
      return m ? `${m[1]}T${m[2]}` : undefined;
    }
    case 'date':
      return text === 'infinity' || text === '-infinity' || DATE.test(text) ? text : undefined;
    case 'text':
      return text;
    case 'database':
      return undefined;
  }
}

export interface DecodeColumn {
  name: string;
  typeOid: number;
}

/** One tuple to decode: its columns (from the relation message) and its text values. */
export interface DecodeJob {
  columns: readonly DecodeColumn[];
  tuple: RawTuple;
}

interface TypeInfo {
  kind: Kind;
  /** `format_type(oid, null)`: a name to cast text to. */
  name: string;
}

export class ValueDecoder {
  private readonly types = new Map<number, TypeInfo>();

  constructor(private readonly db: Queryable) {}

  /** Decodes every job's tuple into a to_jsonb-shaped record (unsent TOAST values are left out). */
  async decode(jobs: readonly DecodeJob[]): Promise<Record<string, unknown>[]> {
    await this.resolveTypes(jobs);
    const out: Record<string, unknown>[] = [];
    const deferred: { record: Record<string, unknown>; column: string; text: string; type: string }[] = [];
    for (const job of jobs) {
      const record: Record<string, unknown> = {};
      for (const col of job.columns) {
        const text = job.tuple[col.name];
        if (text === undefined) continue;
        if (text === null) {
          record[col.name] = null;
          continue;
        }
        const info = this.types.get(col.typeOid) ?? { kind: 'text', name: 'text' };
        const value = convert(info.kind, text);
        if (value === undefined) {
          record[col.name] = null; // filled in below, keeping the column order
          deferred.push({ record, column: col.name, text, type: info.name });
        } else record[col.name] = value;
      }
      out.push(record);
    }
    if (deferred.length) await this.castInDatabase(deferred);
    return out;
  }

  /** Looks up the kinds of type oids not seen before (one catalog query). */
  private async resolveTypes(jobs: readonly DecodeJob[]): Promise<void> {
    const unknown = new Set<number>();
    for (const job of jobs) for (const c of job.columns) if (!this.types.has(c.typeOid)) unknown.add(c.typeOid);
    if (!unknown.size) return;
    const builtin = [...unknown].filter((oid) => BUILTIN.has(oid));
    for (const oid of builtin) {
      this.types.set(oid, { kind: BUILTIN.get(oid)!, name: '' });
      unknown.delete(oid);
    }
    if (!unknown.size) return;
    const { rows } = await this.db.query<{ oid: number; name: string; category: string; typtype: string; base: number; base_type: string; base_category: string; json_cast: boolean }>(
      `select t.oid::int as oid, format_type(t.oid, null) as name, t.typcategory::text as category, t.typtype::text as typtype,
              b.oid::int as base, b.typtype::text as base_type, b.typcategory::text as base_category,
              exists (select 1 from pg_cast c where c.castsource = b.oid and c.casttarget in ('json'::regtype, 'jsonb'::regtype)) as json_cast
       from pg_type t join pg_type b on b.oid = coalesce(nullif(t.typbasetype, 0), t.oid)
       where t.oid = any($1::oid[])`,
      [[...unknown]],
    );
    for (const r of rows) {
      let kind: Kind;
      const builtinBase = BUILTIN.get(r.base);
      // Like to_jsonb: look through domains; enums and ranges print as text; arrays,
      // composites and types with their own cast to json are left to PostgreSQL.
      if (r.category === 'A' || r.base_category === 'A' || r.base_type === 'c' || r.base_type === 'd') kind = 'database';
      else if (builtinBase) kind = builtinBase;
      else if (r.json_cast && r.base >= FIRST_NORMAL_OID) kind = 'database';
      else kind = 'text';
      this.types.set(r.oid, { kind, name: r.name });
    }
    // A type dropped since the change was written: its text is all there is.
    for (const oid of unknown) if (!this.types.has(oid)) this.types.set(oid, { kind: 'text', name: 'text' });
  }

  /** PostgreSQL's own to_jsonb for the values converted nowhere else, many per statement. */
  private async castInDatabase(values: { record: Record<string, unknown>; column: string; text: string; type: string }[]): Promise<void> {
    const CHUNK = 500;
    for (let i = 0; i < values.length; i += CHUNK) {
      const chunk = values.slice(i, i + CHUNK);
      const list = chunk.map((v, j) => `to_jsonb($${j + 1}::text::${v.type || 'text'})`).join(', ');
      const { rows } = await this.db.query<{ v: unknown[] }>(`select jsonb_build_array(${list}) as v`, chunk.map((v) => v.text));
      const converted = rows[0]!.v;
      chunk.forEach((v, j) => (v.record[v.column] = converted[j]));
    }
  }
}
