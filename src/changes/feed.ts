// `ChangeFeed` for the Realtime channels: validates a join's postgres_changes bindings the
// way Supabase does (parse, resolve against the `supabase_realtime` publication, check the
// filter columns and values against the table as the subscriber's role sees it), then files
// the bindings in the dispatcher's index. Errors carry Supabase's texts; the channel sends
// them in a `system` message.
import type { Claims } from '../core/auth.js';
import { indexEntry, valueClass, type PreparedFilter } from './matcher.js';
import { describeParams, parseSubscriptionParams, type SubscriptionParams } from './filter.js';
import { FeedSubscription, type FeedBinding } from './dispatcher.js';
import { sqlState } from './database.js';
import type { DatabaseRuntime, RuntimeParts } from './runtime.js';
import type { ChangeFeed, ChangeSubscriptionRequest, ChangeSubscriptionResult } from './types.js';

export const DATABASE_UNAVAILABLE = 'Realtime was unable to connect to the project database';

/** Condition names Postgrex prints for the SQLSTATEs a subscription can hit. */
const CONDITIONS: Record<string, string> = {
  P0001: 'raise_exception',
  '22P02': 'invalid_text_representation',
  '22007': 'invalid_datetime_format',
  '22008': 'datetime_field_overflow',
  '22003': 'numeric_value_out_of_range',
  '22023': 'invalid_parameter_value',
  '2201B': 'invalid_regular_expression',
  '22021': 'character_not_in_repertoire',
  '22001': 'string_data_right_truncation',
  '22025': 'invalid_escape_sequence',
  '42704': 'undefined_object',
  '42703': 'undefined_column',
  '42883': 'undefined_function',
  '42501': 'insufficient_privilege',
  '42P01': 'undefined_table',
};

/** How Postgrex renders a PostgreSQL error: `ERROR 22P02 (invalid_text_representation) invalid input syntax ...`. */
export function postgrexMessage(err: unknown): string {
  const code = sqlState(err);
  const message = (err as Error).message;
  return code ? `ERROR ${code} (${CONDITIONS[code] ?? code.toLowerCase()}) ${message}` : message;
}

interface PreparedRow {
  sqlType: string;
  typname: string;
  typtype: string;
  value: unknown;
}

export class DatabaseChangeFeed implements ChangeFeed {
  /** Validated filters per (table, role, filters, select), shared by joins with the same binding. */
  private readonly prepared = new Map<string, { at: number; rows: Promise<PreparedRow[]> }>();

  constructor(private readonly runtime: DatabaseRuntime) {}

  get ready(): boolean {
    return this.runtime.ready;
  }

  get error(): Error | undefined {
    return this.runtime.error;
  }

  async connect(): Promise<void> {
    await this.runtime.parts();
  }

  async subscribe(request: ChangeSubscriptionRequest): Promise<ChangeSubscriptionResult> {
    const parsed: { id: number; params: SubscriptionParams }[] = [];
    for (const b of request.bindings) {
      const r = parseSubscriptionParams(b.params);
      if (!r.ok) return { ok: false, error: r.error };
      parsed.push({ id: b.id, params: r.params });
    }
    let parts: RuntimeParts;
    try {
      parts = await this.runtime.parts();
    } catch {
      return { ok: false, error: DATABASE_UNAVAILABLE };
    }
    const sub = new FeedSubscription(request.channel, request.deliver, request.claims, request.notify);
    for (const { id, params } of parsed) {
      const made = await this.bindingsFor(parts, sub, id, params);
      if (!made.ok) return made;
      sub.bindings.push(...made.bindings);
    }
    parts.dispatcher.add(sub);
    return {
      ok: true,
      subscription: {
        updateClaims: (claims: Claims) => parts.dispatcher.updateClaims(sub, claims),
        unsubscribe: () => parts.dispatcher.remove(sub),
      },
    };
  }

  close(): Promise<void> {
    return this.runtime.close();
  }

  private async bindingsFor(
    parts: RuntimeParts,
    sub: FeedSubscription,
    id: number,
    p: SubscriptionParams,
  ): Promise<{ ok: true; bindings: FeedBinding[] } | { ok: false; error: string }> {
    const { catalog } = parts;
    const failed = (err: unknown) => ({
      ok: false as const,
      error: `Unable to subscribe to changes with given parameters. An exception happened so please check your connect parameters: [${describeParams(p)}]. Exception: ${postgrexMessage(err)}`,
    });
    let tables: { schema: string; table: string }[];
    try {
      if (!(await catalog.roleExists(sub.role))) return failed(Object.assign(new Error(`role "${sub.role}" does not exist`), { code: '22023' }));
      tables = await catalog.publishedTables(p.schema, p.table);
    } catch (err) {
      return failed(err);
    }
    if (tables.length === 0) {
      return { ok: false, error: `Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: [${describeParams(p)}]` };
    }
    const bindings: FeedBinding[] = [];
    for (const t of tables) {
      let filters: PreparedFilter[];
      const meta = await catalog.table(t.schema, t.table);
      if (!meta) continue;
      try {
        const rows = await this.prepare(parts, t, sub.role, p);
        filters = p.filters.map((f, i) => ({
          column: f.column,
          op: f.op,
          negate: f.negate,
          text: f.value,
          value: rows[i]!.value,
          cls: valueClass(rows[i]!.typname, rows[i]!.typtype),
          sqlType: rows[i]!.sqlType,
        }));
      } catch (err) {
        return failed(err);
      }
      const select = p.select ? [...new Set(p.select)].sort() : null;
      bindings.push({
        sub,
        id,
        entity: meta.entity,
        schema: t.schema,
        table: t.table,
        action: p.event,
        filters,
        select: select ? new Set(select) : null,
        selectKey: select ? JSON.stringify(select) : '*',
        indexEntry: indexEntry(filters),
      });
    }
    return { ok: true, bindings };
  }

  /** Runs `realtime.fanout_prepare_filters` (cached for a few seconds: joins come in crowds). */
  private prepare(parts: RuntimeParts, t: { schema: string; table: string }, role: string, p: SubscriptionParams): Promise<PreparedRow[]> {
    if (p.filters.length === 0 && !p.select) return Promise.resolve([]);
    const key = JSON.stringify([t.schema, t.table, role, p.filters, p.select]);
    const now = Date.now();
    const hit = this.prepared.get(key);
    if (hit && now - hit.at < 5000) return hit.rows;
    if (this.prepared.size > 10_000) this.prepared.clear();
    const rows = parts.db
      .query<{ r: PreparedRow[] }>(
        `select realtime.fanout_prepare_filters(to_regclass(format('%I.%I', $1::text, $2::text)), $3::text, $4::text[], $5::text[], $6::text[], $7::text[]) as r`,
        [t.schema, t.table, role, p.filters.map((f) => f.column), p.filters.map((f) => f.op), p.filters.map((f) => f.value), p.select],
      )
      .then((r) => r.rows[0]!.r);
    this.prepared.set(key, { at: now, rows });
    rows.catch(() => this.prepared.delete(key));
    return rows;
  }
}
