// Going back from WAL capture to the outbox without losing or repeating a change.
//
// One transaction puts the capture triggers back (CREATE TRIGGER waits for every
// transaction that wrote to the table without one, and holds later writers until it
// commits), then records the cut: the snapshot S the outbox will read from and, after it,
// the WAL insert position L. A transaction visible in S committed before the triggers
// existed and is in the WAL before L; one not visible in S fired the triggers. So the slot
// is read once more up to L for the transactions visible in S, then dropped, and the outbox
// takes it from S. Each step is recorded in the cursor row, so a crash anywhere is resumed.
// (The way from the outbox to WAL is in reader.ts: the slot's exported snapshot is the cut.)
import type { Logger } from '../../core/log.js';
import type { Database } from '../database.js';
import type { CapturedRow } from '../outbox.js';
import { formatLsn, parseLsn } from './lsn.js';
import { WalConsumer } from './reader.js';
import { dropSlot, inspectSlot, slotName } from './slot.js';

export interface LeaveWalOptions {
  db: Database;
  databaseUrl: string | undefined;
  consumer: string;
  handle: (rows: CapturedRow[]) => Promise<void>;
  notice: (message: string) => void;
  log: Logger;
}

/** Before the outbox consumer starts: finishes this consumer's switch from WAL capture, if it used it. */
export async function leaveWal(o: LeaveWalOptions): Promise<void> {
  if (o.db.kind !== 'postgres' || !o.databaseUrl) return;
  const read = async () =>
    (
      await o.db.query<{ capture: string; snapshot: string; wal_until: string | null }>(
        'select capture, snapshot::text as snapshot, wal_until::text as wal_until from realtime.fanout_cursor where consumer = $1',
        [o.consumer],
      )
    ).rows[0];
  let cursor = await read();
  if (!cursor) return;
  if (cursor.capture === 'wal') {
    await o.db.transaction(async (tx) => {
      await tx.query(`update realtime.fanout_cursor set capture = 'outbox', outbox_until = null, updated_at = now() where consumer = $1`, [o.consumer]);
      await tx.query('select realtime.fanout_sync_triggers()');
      // Two statements: the WAL position must be taken after the snapshot.
      await tx.query('update realtime.fanout_cursor set snapshot = pg_current_snapshot() where consumer = $1', [o.consumer]);
      await tx.query('update realtime.fanout_cursor set wal_until = pg_current_wal_insert_lsn() where consumer = $1', [o.consumer]);
    });
    cursor = (await read())!;
    o.log.info({ consumer: o.consumer }, 'switching this consumer from WAL capture to the outbox: capture triggers are back');
  }
  if (!cursor.wal_until) return;
  const name = slotName(o.consumer);
  const slot = await inspectSlot(o.db, name);
  if (slot && slot.walStatus !== 'lost') {
    const until = { lsn: parseLsn(cursor.wal_until), snapshot: cursor.snapshot };
    const reader = new WalConsumer({ databaseUrl: o.databaseUrl, consumer: o.consumer, db: o.db, handle: o.handle, notice: o.notice, log: o.log, finishUntil: until });
    await reader.start();
    try {
      await reader.settle();
    } finally {
      await reader.stop();
    }
    await dropSlot(o.db, name);
    o.log.info({ consumer: o.consumer, slot: name, until: formatLsn(until.lsn) }, 'delivered the last WAL changes and dropped the replication slot; the outbox captures from here');
  } else {
    if (slot) await dropSlot(o.db, name);
    const message = `The replication slot ${name} was ${slot ? 'invalidated' : 'missing'} when capture switched back to the outbox: changes committed just before the switch may be lost`;
    o.log.error({ consumer: o.consumer, slot: name }, message);
    o.notice(message);
  }
  await o.db.query('update realtime.fanout_cursor set wal_until = null, updated_at = now() where consumer = $1', [o.consumer]);
}
