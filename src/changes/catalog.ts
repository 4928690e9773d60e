// What the feed needs to know about tables and roles, read from the system catalogs and
// cached briefly: a table's columns and types, primary key, replica identity and whether
// RLS is on; which columns a role may SELECT; which roles exist; which tables the
// `supabase_realtime` publication holds. Entries expire after `ttlMs`, so grants, policies
// and DDL changes are picked up within seconds without a query per change.
import type { Queryable } from './database.js';
import { entityKey } from './binding-index.js';
import { valueClass, type ValueClass } from './matcher.js';
import { PUBLICATION } from './schema.js';

export interface ColumnMeta {
  name: string;
  /** `pg_type.typname` of the column type, as Supabase reports it in `columns`. */
  typname: string;
  cls: ValueClass;
}

export interface TableMeta {
  schema: string;
  table: string;
  entity: string;
  /** Columns in attnum order. */
  columns: ColumnMeta[];
  primaryKey: string[];
  /** The columns of the old row a change reports: the primary key unless REPLICA IDENTITY says otherwise. */
  identity: 'full' | string[];
  rls: boolean;
}

interface Cached<T> {
  value: T;
  at: number;
}

export class Catalog {
  private readonly tables = new Map<string, Cached<TableMeta | undefined>>();
  private readonly privileges = new Map<string, Cached<Set<string>>>();
  private readonly roles = new Map<string, Cached<boolean>>();
  private readonly published = new Map<string, Cached<{ schema: string; table: string }[]>>();
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: Queryable,
    private readonly ttlMs = 5000,
  ) {}

  /** A table's metadata, or undefined if it does not exist (any more). */
  table(schema: string, table: string): Promise<TableMeta | undefined> {
    const key = entityKey(schema, table);
    return this.cached(this.tables, `t:${key}`, key, () => this.loadTable(schema, table));
  }

  /** Forgets a table, e.g. when a change shows columns the cached metadata lacks. */
  invalidate(schema: string, table: string): void {
    this.tables.delete(entityKey(schema, table));
  }

  /** The columns `role` may SELECT on the table (empty for an unknown role). */
  readableColumns(meta: TableMeta, role: string): Promise<Set<string>> {
    const key = `${meta.entity}\u0000${role}`;
    return this.cached(this.privileges, `p:${key}`, key, async () => {
      try {
        const { rows } = await this.db.query<{ cols: string[] }>(
          `select coalesce(array_agg(a.attname::text), '{}') as cols
           from pg_attribute a
           where a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) and a.attnum > 0 and not a.attisdropped
             and has_column_privilege($3::text, a.attrelid, a.attnum, 'SELECT')`,
          [meta.schema, meta.table, role],
        );
        return new Set(rows[0]?.cols ?? []);
      } catch {
        return new Set<string>(); // role does not exist
      }
    });
  }

  roleExists(role: string): Promise<boolean> {
    return this.cached(this.roles, `r:${role}`, role, async () => {
      const { rows } = await this.db.query<{ ok: boolean }>('select exists (select 1 from pg_roles where rolname = $1) as ok', [role]);
      return rows[0]?.ok ?? false;
    });
  }

  /**
   * The published tables a binding's schema and table select, with Supabase's matching
   * (`*` is a wildcard; otherwise a LIKE pattern without escape, as the server's query has it).
   */
  publishedTables(schema: string, table: string): Promise<{ schema: string; table: string }[]> {
    const key = `${schema}\u0000${table}`;
    return this.cached(this.published, `pub:${key}`, key, () => this.loadPublished(schema, table));
  }

  private async loadPublished(schema: string, table: string): Promise<{ schema: string; table: string }[]> {
    const { rows } = await this.db.query<{ schema: string; table: string }>(
      `select p.schemaname::text as schema, p.tablename::text as table
       from pg_publication_tables p
       where p.pubname = $1
         and p.schemaname like (case $2::text when '*' then '%' else $2::text end) escape ''
         and p.tablename like (case $3::text when '*' then '%' else $3::text end) escape ''
       order by 1, 2`,
      [PUBLICATION, schema, table],
    );
    return rows;
  }

  /** True when the database orders text by code point (collation C / POSIX / C.UTF-8), so JavaScript can compare text exactly. */
  async codePointCollation(): Promise<boolean> {
    let row: { collation: string; provider: string } | undefined;
    try {
      ({ rows: [row] } = await this.db.query<{ collation: string; provider: string }>(
        `select datcollate::text as collation, datlocprovider::text as provider from pg_database where datname = current_database()`,
      ));
    } catch {
      // PostgreSQL before 15 has no datlocprovider: libc is the only provider.
      ({ rows: [row] } = await this.db.query<{ collation: string; provider: string }>(
        `select datcollate::text as collation, 'c' as provider from pg_database where datname = current_database()`,
      ));
    }
    return !!row && row.provider === 'c' && /^(C|POSIX|C\.UTF-?8)$/i.test(row.collation);
  }

  private async loadTable(schema: string, table: string): Promise<TableMeta | undefined> {
    const { rows } = await this.db.query<{
      rls: boolean;
      replident: string;
      columns: { name: string; typname: string; base: string; basekind: string }[];
      pk: string[];
      identity_cols: string[];
    }>(
      `select c.relrowsecurity as rls, c.relreplident::text as replident,
         coalesce((select jsonb_agg(jsonb_build_object('name', a.attname, 'typname', t.typname, 'base', b.typname, 'basekind', b.typtype) order by a.attnum)
                   from pg_attribute a join pg_type t on t.oid = a.atttypid join pg_type b on b.oid = coalesce(nullif(t.typbasetype, 0), t.oid)
                   where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]') as columns,
         coalesce((select array_agg(a.attname::text order by array_position(i.indkey::int2[], a.attnum))
                   from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey::int2[])
                   where i.indrelid = c.oid and i.indisprimary), '{}') as pk,
         coalesce((select array_agg(a.attname::text order by array_position(i.indkey::int2[], a.attnum))
                   from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey::int2[])
                   where i.indrelid = c.oid and i.indisreplident), '{}') as identity_cols
       from pg_class c
       where c.oid = to_regclass(format('%I.%I', $1::text, $2::text))`,
      [schema, table],
    );
    const r = rows[0];
    if (!r) return undefined;
    const identity = r.replident === 'f' ? 'full' : r.replident === 'i' ? r.identity_cols : r.replident === 'n' ? [] : r.pk;
    return {
      schema,
      table,
      entity: entityKey(schema, table),
      columns: r.columns.map((c) => ({ name: c.name, typname: c.typname, cls: valueClass(c.base, c.basekind) })),
      primaryKey: r.pk,
      identity,
      rls: r.rls,
    };
  }

  /** Serves from `store` while fresh; concurrent misses for one key share one query. */
  private cached<T>(store: Map<string, Cached<T>>, flightKey: string, key: string, load: () => Promise<T>): Promise<T> {
    const hit = store.get(key);
    if (hit && Date.now() - hit.at < this.ttlMs) return Promise.resolve(hit.value);
    const running = this.inflight.get(flightKey) as Promise<T> | undefined;
    if (running) return running;
    const p = load()
      .then((value) => {
        store.set(key, { value, at: Date.now() });
        return value;
      })
      .finally(() => this.inflight.delete(flightKey));
    this.inflight.set(flightKey, p);
    return p;
  }
}
