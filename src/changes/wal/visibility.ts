// Whether a decoded transaction is visible to other sessions yet.
//
// PostgreSQL flushes a transaction's commit record before the committing backend leaves
// the process array, and a logical WAL sender decodes and sends the transaction as soon as
// the record is flushed. In between, the change is in the stream but a new snapshot does
// not see its rows: for microseconds usually, longer when the backend is descheduled on a
// busy machine, and for a synchronous standby's whole round trip (the backend waits for it
// after the flush). Dispatch looks rows up by primary key for the RLS check, so a
// transaction handed over in that moment is dropped for every subscriber. The outbox never
// sees this (its rows are read through a snapshot), so WAL capture waits here first.
import type { Queryable } from '../database.js';

/** Whether a transaction (32-bit xid from pgoutput) had committed when `snapshot` (xmin:xmax:xip) was taken. */
export function visibleInSnapshot(xid: number, snapshot: string): boolean {
  const [xminText, xmaxText, xipText] = snapshot.split(':') as [string, string, string];
  const xmin = BigInt(xminText);
  const xmax = BigInt(xmaxText);
  let full = (xmax & ~0xffffffffn) | BigInt(xid >>> 0);
  if (full > xmax) full -= 0x100000000n;
  if (full < xmin) return true;
  if (full >= xmax) return false;
  return !(xipText ? xipText.split(',').map((x) => BigInt(x)) : []).includes(full);
}

/** Pauses between looks while a transaction is still invisible (ms); the last one repeats. */
const RECHECK_MS = [1, 2, 5, 10, 20, 50];

/**
 * Resolves true once every transaction in `xids` (all decoded as committed) is visible to a
 * new snapshot, or false if `stopped()` turned true while waiting. One query when they
 * already are, which is nearly always.
 */
export async function waitUntilVisible(db: Queryable, xids: readonly number[], stopped: () => boolean): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    const { rows } = await db.query<{ snapshot: string }>('select pg_current_snapshot()::text as snapshot');
    const snapshot = rows[0]!.snapshot;
    if (xids.every((xid) => visibleInSnapshot(xid, snapshot))) return true;
    if (stopped()) return false;
    await new Promise((r) => setTimeout(r, RECHECK_MS[Math.min(attempt, RECHECK_MS.length - 1)]));
  }
}
