// The two questions the dispatcher asks the database, each batched into one round trip per
// window of changes: filter conditions JavaScript cannot decide exactly, and row-level
// security (which rows each distinct set of claims may SELECT).
import type { Claims } from '../core/auth.js';
import type { Queryable } from './database.js';
import type { DatabasePredicate } from './matcher.js';
import type { TableMeta } from './catalog.js';

/** Evaluates the predicates in one query; each result is true, false or null (unknown / failed). */
export async function evaluatePredicates(db: Queryable, predicates: readonly DatabasePredicate[]): Promise<(boolean | null)[]> {
  if (predicates.length === 0) return [];
  const { rows } = await db.query<{ ok: boolean | null }>(
    `select realtime.fanout_check_filter(x.op, x.type_::regtype, x.v1, x.v2, x.neg) as ok
     from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[]) with ordinality as x(op, type_, v1, v2, neg, i)
     order by x.i`,
    [
      predicates.map((p) => p.filter.op),
      predicates.map((p) => p.filter.sqlType),
      predicates.map((p) => p.valueText),
      predicates.map((p) => p.filter.text),
      predicates.map((p) => p.filter.negate),
    ],
  );
  return rows.map((r) => r.ok);
}

/** One distinct identity to check: its role, its claims and the primary keys (as text) of the rows in question. */
export interface VisibilityCheck {
  role: string;
  claims: Claims;
  keys: (string | null)[][];
}

/**
 * Which keys each check may SELECT from the table right now, with its role and claims set
 * as Supabase sets them. Returns, per check, the set of visible key indexes.
 */
export async function visibleKeys(db: Queryable, meta: TableMeta, checks: readonly VisibilityCheck[]): Promise<Set<number>[]> {
  const out = checks.map(() => new Set<number>());
  if (checks.length === 0) return out;
  const { rows } = await db.query<{ check_index: number; key_index: number }>(
    `select check_index, key_index from realtime.fanout_visible_keys(to_regclass(format('%I.%I', $1::text, $2::text)), $3::text[], $4::jsonb)`,
    [meta.schema, meta.table, meta.primaryKey, JSON.stringify(checks)],
  );
  for (const r of rows) out[r.check_index]?.add(r.key_index);
  return out;
}
