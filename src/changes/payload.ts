// Builds the `data` of a `postgres_changes` message the way Supabase's `realtime.apply_rls`
// does (reference §5.1): the columns a role may SELECT (narrowed to `select` plus the
// primary key when the binding has one), `record` for INSERT/UPDATE, `old_record` for
// UPDATE/DELETE with the replica-identity columns (only the primary key of a DELETE on an
// RLS table, whose old row cannot be checked), and the 1 MB rule: an oversized change keeps
// only values of at most 64 bytes and carries "Error 413: Payload Too Large".
import type { ChangeAction } from './filter.js';
import type { TableMeta } from './catalog.js';
import type { CapturedRow } from './outbox.js';
import type { ChangeData } from './types.js';

export const MAX_RECORD_BYTES = 1024 * 1024;
const SMALL_VALUE_BYTES = 64;

export const ERROR_NO_PRIMARY_KEY = 'Error 400: Bad Request, no primary key';
export const ERROR_UNAUTHORIZED = 'Error 401: Unauthorized';
export const ERROR_TOO_LARGE = 'Error 413: Payload Too Large';

export function actionName(action: CapturedRow['action']): ChangeAction {
  return action === 'I' ? 'INSERT' : action === 'U' ? 'UPDATE' : 'DELETE';
}

/** `2026-01-01T00:00:00.123Z`: UTC, milliseconds, as Supabase formats commit_timestamp. */
export function commitTimestamp(ms: number): string {
  return new Date(Math.floor(ms)).toISOString();
}

export function buildChangeData(row: CapturedRow, meta: TableMeta, readable: ReadonlySet<string>, select: ReadonlySet<string> | null): ChangeData {
  const type = actionName(row.action);
  const pk = meta.primaryKey;
  const shown = (col: string): boolean => readable.has(col) && (select === null || select.has(col) || pk.includes(col));
  const oversized = row.size > MAX_RECORD_BYTES;
  const pick = (image: Record<string, unknown> | null, allow: (col: string) => boolean): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    if (!image) return out;
    for (const key of Object.keys(image)) {
      if (!allow(key)) continue;
      const value = image[key];
      if (oversized && Buffer.byteLength(JSON.stringify(value) ?? 'null') > SMALL_VALUE_BYTES) continue;
      out[key] = value;
    }
    return out;
  };
  const data: ChangeData = {
    schema: row.schema,
    table: row.table,
    type,
    commit_timestamp: commitTimestamp(row.capturedAt),
    columns: meta.columns.filter((c) => shown(c.name)).map((c) => ({ name: c.name, type: c.typname })),
    errors: oversized ? [ERROR_TOO_LARGE] : null,
  };
  if (type !== 'DELETE') data.record = pick(row.record, shown);
  if (type !== 'INSERT') {
    const identity = meta.identity === 'full' ? null : new Set(meta.identity);
    const rlsDelete = type === 'DELETE' && meta.rls;
    data.old_record = pick(row.oldRecord, (col) => shown(col) && (identity === null || identity.has(col)) && (!rlsDelete || pk.includes(col)));
  }
  return data;
}

/** The message a subscriber gets instead of a row it cannot be shown (no primary key, or no right to read it). */
export function errorChangeData(row: CapturedRow, error: string): ChangeData {
  return { schema: row.schema, table: row.table, type: actionName(row.action), commit_timestamp: commitTimestamp(row.capturedAt), errors: [error] };
}
