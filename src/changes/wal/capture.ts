// The change reader for a capture mode: WAL capture (reader.ts), or the outbox consumer
// after finishing any switch away from WAL capture (handover.ts). Both feed the same
// handler, so dispatch, the cluster bus and realtime.send delivery are one code path.
import type { Logger } from '../../core/log.js';
import type { Database } from '../database.js';
import type { ChangeReader } from '../leader.js';
import type { CapturedRow, OutboxConsumer } from '../outbox.js';
import type { CaptureMode } from './capture-mode.js';
import { leaveWal } from './handover.js';
import { WalConsumer } from './reader.js';

export interface ReaderContext {
  mode: CaptureMode;
  db: Database;
  databaseUrl: string | undefined;
  consumer: string;
  log: Logger;
  /** The outbox consumer as the runtime configures it. */
  outbox: (handle: (rows: CapturedRow[]) => Promise<void>) => OutboxConsumer;
  onError: (err: unknown) => void;
}

export function makeChangeReader(ctx: ReaderContext, handle: (rows: CapturedRow[]) => Promise<void>, notice: (message: string) => void): ChangeReader {
  if (ctx.mode === 'wal') {
    return new WalConsumer({ databaseUrl: ctx.databaseUrl!, consumer: ctx.consumer, db: ctx.db, handle, notice, log: ctx.log, onError: ctx.onError });
  }
  const outbox = ctx.outbox(handle);
  return {
    async start() {
      await leaveWal({ db: ctx.db, databaseUrl: ctx.databaseUrl, consumer: ctx.consumer, handle, notice, log: ctx.log });
      await outbox.start();
    },
    stop: () => outbox.stop(),
    settle: () => outbox.settle(),
  };
}
