// Captures changes from PostgreSQL's write-ahead log: a logical replication slot with the
// `pgoutput` plugin on the `supabase_realtime` publication (plus `fanout_messages`, which
// carries realtime.send() rows), read through pg-logical-replication. Nothing is added to a
// writer's transaction: no trigger, no outbox row.
//
// Each committed transaction becomes CapturedRow values shaped exactly as the outbox's (see
// values.ts), with the transaction's commit time as commit_timestamp, and is handed to the
// same handler the outbox consumer feeds (the dispatcher, or in a cluster the leader's
// publish to the bus). The slot's confirmed position advances only after that handler
// resolved for the transaction, so a change committed while the gateway is down or its
// replication connection is cut is decoded again when it is back; a transaction handled
// but not yet confirmed when a connection dropped is recognized by its commit position
// and not handed over twice. A transaction is handed over only once other sessions can see
// its rows (visibility.ts: its commit record is decoded a moment before that).
//
// Starting takes over from the outbox when this consumer read it before (outbox → WAL,
// exactly: the slot's exported snapshot splits the transactions between the two), and
// recreates a slot that was dropped or invalidated, telling subscribers that changes may
// have been lost.
//
// It stays one file: the slot, the replication connection, the queue of decoded
// transactions and the confirmed position are one state machine, and the guarantee above
// (confirm only after the handler resolved, never hand a transaction over twice) needs
// every transition in view.
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import type { Logger } from '../../core/log.js';
import { scrubSecrets } from '../../core/log.js';
import type { Database } from '../database.js';
import { sqlState } from '../database.js';
import { OutboxConsumer, type CapturedRow } from '../outbox.js';
import { MESSAGES_PUBLICATION, PUBLICATION } from '../schema.js';
import { formatLsn, parseLsn } from './lsn.js';
import { createSlot, dropSlot, inspectIdleSlot, inspectSlot, SESSION_OPTIONS, slotName } from './slot.js';
import { ValueDecoder, type RawTuple } from './values.js';
import { visibleInSnapshot, waitUntilVisible } from './visibility.js';

/** Prefix of the logical messages `settle()` writes to find out when the reader has caught up. */
const SETTLE_PREFIX = 'fanout.settle';

export interface WalConsumerOptions {
  databaseUrl: string;
  /** --changes-consumer: names the cursor row and the slot. */
  consumer: string;
  /** The gateway's pool: cursor, slot inspection, value conversion. */
  db: Database;
  /** The outbox consumer's handler: resolves once the rows were handed to dispatch (or the bus). */
  handle: (rows: CapturedRow[]) => Promise<void>;
  /** Tells every postgres_changes subscriber something went wrong (a `system` message). */
  notice: (message: string) => void;
  log: Logger;
  /** Called on each capture failure (metrics); the reader retries on its own. */
  onError?: (err: unknown) => void;
  /** Called with the slot's confirmed position after each advance. */
  onConfirmed?: (lsn: bigint) => void;
  retryMs?: number;
  /** Rows handed over per call at most (transactions are never split). */
  batchRows?: number;
  /**
   * Finishing a switch back to the outbox (handover.ts): hand over only transactions whose
   * commit record lies before `lsn` and which are visible in `snapshot` (the outbox has the
   * others); the cursor and slot are left as they are.
   */
  finishUntil?: { lsn: bigint; snapshot: string };
}

interface RawChange {
  action: 'I' | 'U' | 'D';
  relation: Pgoutput.MessageRelation;
  tuple: RawTuple | null;
  old: RawTuple | null;
  size: number;
}

interface Transaction {
  xid: number;
  /** Where the commit record starts (pgoutput's begin message has it). */
  commitLsn: bigint;
  endLsn: bigint;
  commitMs: number;
  changes: RawChange[];
}

const identity = (raw: unknown): unknown => raw;

/** Bytes of a tuple's text values, for Supabase's 1 MB payload rule. */
function tupleBytes(t: RawTuple | null): number {
  if (!t) return 0;
  let n = 2;
  for (const [k, v] of Object.entries(t)) n += k.length + 4 + (v == null ? 4 : Buffer.byteLength(v));
  return n;
}

/** The broadcast-from-database rows the outbox trigger captures (its WHEN clause). */
export function isDatabaseBroadcast(record: Record<string, unknown>): boolean {
  return record.extension === 'broadcast' && record.event != null && (record.payload != null || record.binary_payload != null);
}

export class WalConsumer {
  readonly slot: string;
  private service: LogicalReplicationService | undefined;
  private readonly decoder: ValueDecoder;
  private stopped = false;
  private open: Transaction | undefined;
  private readonly queue: Transaction[] = [];
  /** Commit end of the newest transaction queued (dedupes what a reconnect sends again). */
  private queuedLsn = 0n;
  /** Commit end of the newest transaction handed over; what the slot may confirm. */
  private handledLsn = 0n;
  /** A position past every handed-over transaction with nothing in flight (keepalives). */
  private idleLsn = 0n;
  private pumping: Promise<void> | undefined;
  private reconnect: NodeJS.Timeout | undefined;
  private readonly settleWaiters = new Map<string, { barrier: bigint | undefined; resolve: () => void }>();
  private failing = false;
  private streaming = false;
  private beforeStart: ((err: Error) => void) | undefined;
  private readonly retryMs: number;
  private readonly batchRows: number;

  constructor(private readonly o: WalConsumerOptions) {
    this.slot = slotName(o.consumer);
    this.decoder = new ValueDecoder(o.db);
    this.retryMs = o.retryMs ?? 1000;
    this.batchRows = o.batchRows ?? 5000;
  }

  /** Takes over from the outbox if needed, makes sure the slot exists, and starts streaming. */
  async start(): Promise<void> {
    if (!this.o.finishUntil) await this.prepare();
    await this.connect();
  }

  /** Resolves once every transaction committed before the call has been handed over. */
  async settle(): Promise<void> {
    const token = `${process.pid}:${Math.random().toString(36).slice(2)}`;
    const done = new Promise<void>((resolve) => this.settleWaiters.set(token, { barrier: undefined, resolve }));
    // A non-transactional logical message is decoded in WAL order: when it arrives, every
    // transaction committed before it has arrived too.
    await this.o.db.query('select pg_logical_emit_message(false, $1, $2)', [SETTLE_PREFIX, token]);
    await done;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnect) clearTimeout(this.reconnect);
    await this.pumping;
    const service = this.service;
    this.service = undefined;
    if (service) {
      await this.acknowledge(service);
      await service.stop().catch(() => undefined);
    }
    for (const w of this.settleWaiters.values()) w.resolve();
    this.settleWaiters.clear();
  }

  // ------------------------------------------------------------------ set-up

  /** The cursor row and the slot, made to agree (see schema.ts for the cursor's columns). */
  private async prepare(): Promise<void> {
    const { db, log, consumer } = this.o;
    const { rows } = await db.query<{ capture: string; snapshot: string; outbox_until: string | null; wal_until: string | null }>(
      'select capture, snapshot::text as snapshot, outbox_until::text as outbox_until, wal_until::text as wal_until from realtime.fanout_cursor where consumer = $1',
      [consumer],
    );
    const cursor = rows[0];
    const slot = await inspectIdleSlot(db, this.slot);
    if (cursor?.capture === 'outbox' && cursor.wal_until && slot && slot.walStatus !== 'lost') {
      // A switch back to the outbox that never finished: the slot still holds everything.
      await db.query(`update realtime.fanout_cursor set capture = 'wal', wal_until = null, outbox_until = snapshot, updated_at = now() where consumer = $1`, [consumer]);
      log.info({ slot: this.slot }, 'WAL capture resumes its slot (the switch to the outbox had not finished)');
    } else if (!cursor || cursor.capture === 'outbox') {
      // First WAL start for this consumer. A slot left from an unfinished switch is not
      // ours yet: everything it holds is in the outbox too, so it is made again.
      if (slot) await dropSlot(db, this.slot);
      const created = await createSlot(this.o.databaseUrl, this.slot);
      await db.transaction(async (tx) => {
        if (cursor) {
          await tx.query(`update realtime.fanout_cursor set capture = 'wal', outbox_until = $2::pg_snapshot, wal_until = null, updated_at = now() where consumer = $1`, [consumer, created.snapshot]);
        } else {
          await tx.query(`insert into realtime.fanout_cursor (consumer, snapshot, capture, outbox_until) values ($1, $2::pg_snapshot, 'wal', $2::pg_snapshot)`, [consumer, created.snapshot]);
        }
        await tx.query('select realtime.fanout_sync_triggers()');
      });
      log.info({ slot: this.slot, at: formatLsn(created.consistentPoint) }, cursor ? 'switched this consumer from the outbox to WAL capture; capture triggers no other consumer needs were removed' : 'created the replication slot');
    } else if (!slot || slot.walStatus === 'lost') {
      await this.replaceLostSlot(slot ? 'was invalidated (the WAL it needed was removed: max_slot_wal_keep_size)' : 'is missing (dropped while the gateway was not reading it)');
    }
    await this.drainOutbox();
  }

  /** Outbox rows this consumer still owes from before the switch (up to the slot's snapshot). */
  private async drainOutbox(): Promise<void> {
    const { db, consumer } = this.o;
    const { rows } = await db.query<{ pending: boolean; until: string | null }>(
      `select outbox_until is not null and snapshot::text <> outbox_until::text as pending, outbox_until::text as until from realtime.fanout_cursor where consumer = $1`,
      [consumer],
    );
    if (rows[0]?.pending) {
      const outbox = new OutboxConsumer(db, this.o.handle, this.o.log, { consumer });
      await outbox.drainTo(rows[0].until!);
      this.o.log.info({ consumer }, 'delivered the changes the outbox captured before the switch to WAL capture');
    }
    // Nobody reads the outbox any more: what is left there was also decoded by the slot.
    await db.query(`delete from realtime.fanout_changes where not exists (select 1 from realtime.fanout_cursor where capture = 'outbox' or outbox_until is null or snapshot::text <> outbox_until::text)`);
  }

  /** The slot is gone (or unusable): make a new one, say so, and tell subscribers. */
  private async replaceLostSlot(why: string): Promise<void> {
    const { db, consumer, log } = this.o;
    const state = await inspectSlot(db, this.slot);
    if (state) await dropSlot(db, this.slot);
    const created = await createSlot(this.o.databaseUrl, this.slot);
    await db.query(`update realtime.fanout_cursor set capture = 'wal', snapshot = $2::pg_snapshot, outbox_until = $2::pg_snapshot, wal_until = null, updated_at = now() where consumer = $1`, [consumer, created.snapshot]);
    this.queuedLsn = this.handledLsn = this.idleLsn = 0n;
    const message = `The replication slot ${this.slot} ${why}; it was recreated, and changes committed before ${new Date().toISOString()} that had not been delivered are lost`;
    log.error({ slot: this.slot, reason: why }, 'replication slot lost: changes may have been lost; recreated it');
    this.o.notice(message);
  }

  // ------------------------------------------------------------------ streaming

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const service = new LogicalReplicationService(
      { connectionString: this.o.databaseUrl, application_name: `fanout-wal-${this.o.consumer}`.slice(0, 63), options: SESSION_OPTIONS },
      // The confirmed position is ours to send (after dispatch), never the library's.
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
    this.service = service;
    this.open = undefined;
    service.on('data', (lsn: string, msg: Pgoutput.Message) => this.onMessage(lsn, msg));
    service.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) => this.onKeepalive(service, lsn, shouldRespond));
    service.on('error', (err: Error) => this.connectionLost(service, err));
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION, MESSAGES_PUBLICATION], messages: true });
    // Streaming started, or the error that ended the connection before it did.
    const outcome = new Promise<Error | undefined>((resolve) => {
      service.once('start', () => resolve(undefined));
      this.beforeStart = resolve;
    });
    service.subscribe(plugin, this.slot).then(
      () => this.connectionLost(service, new Error('the server ended replication')),
      (err: unknown) => this.connectionLost(service, err as Error),
    );
    const failed = await outcome;
    this.beforeStart = undefined;
    if (failed) throw failed;
    this.streaming = true;
    if (this.failing) this.o.log.info({ slot: this.slot }, 'WAL capture reading again');
    this.failing = false;
  }

  private connectionLost(service: LogicalReplicationService, err: Error): void {
    if (this.service !== service) return;
    this.service = undefined;
    // stop(), not destroy(): our 'error' listener stays, so a late error from the dead connection is ignored, not thrown.
    void service.stop().catch(() => undefined);
    const wasStreaming = this.streaming;
    this.streaming = false;
    if (!wasStreaming) return void this.beforeStart?.(err); // connect() reports it
    if (this.stopped) return;
    this.o.onError?.(err);
    if (!this.failing) this.o.log.warn({ slot: this.slot, err: scrubSecrets(err.message), code: sqlState(err) }, 'the WAL replication connection was lost; reconnecting');
    this.failing = true;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnect) return;
    this.reconnect = setTimeout(() => {
      this.reconnect = undefined;
      void this.recover().catch((err: unknown) => {
        this.o.onError?.(err);
        this.o.log.warn({ slot: this.slot, err: scrubSecrets((err as Error).message) }, 'WAL capture cannot resume yet; retrying');
        this.scheduleReconnect();
      });
    }, this.retryMs);
    this.reconnect.unref();
  }

  /** After a lost connection: check the slot (dropped, invalidated, taken) and stream again. */
  private async recover(): Promise<void> {
    if (this.stopped) return;
    const slot = await inspectIdleSlot(this.o.db, this.slot);
    if (!slot) await this.replaceLostSlot('was dropped while the gateway was reading it');
    else if (slot.walStatus === 'lost') await this.replaceLostSlot('was invalidated (the WAL it needed was removed: max_slot_wal_keep_size)');
    await this.connect();
  }

  private onMessage(lsn: string, msg: Pgoutput.Message): void {
    switch (msg.tag) {
      case 'relation':
        // Keep values as the text PostgreSQL sent; values.ts converts them as to_jsonb does.
        for (const c of msg.columns) c.parser = identity;
        return;
      case 'begin':
        this.open = { xid: msg.xid, commitLsn: msg.commitLsn ? parseLsn(msg.commitLsn) : 0n, endLsn: 0n, commitMs: 0, changes: [] };
        return;
      case 'insert':
        this.open?.changes.push({ action: 'I', relation: msg.relation, tuple: msg.new, old: null, size: tupleBytes(msg.new) });
        return;
      case 'update': {
        const old = msg.old ?? msg.key;
        this.open?.changes.push({ action: 'U', relation: msg.relation, tuple: msg.new, old, size: tupleBytes(msg.new) + tupleBytes(old) });
        return;
      }
      case 'delete': {
        const old = msg.old ?? msg.key;
        this.open?.changes.push({ action: 'D', relation: msg.relation, tuple: null, old, size: tupleBytes(old) });
        return;
      }
      case 'commit': {
        const txn = this.open;
        this.open = undefined;
        if (!txn) return;
        txn.endLsn = parseLsn(msg.commitEndLsn ?? lsn);
        txn.commitMs = Number(msg.commitTime) / 1000;
        if (txn.endLsn <= this.queuedLsn) return; // handed over before a reconnect
        this.queuedLsn = txn.endLsn;
        const until = this.o.finishUntil;
        if (until && (txn.commitLsn >= until.lsn || !visibleInSnapshot(txn.xid, until.snapshot))) txn.changes = [];
        if (txn.changes.length) this.queue.push(txn);
        else this.handledLsn = this.handledLsn > txn.endLsn ? this.handledLsn : txn.endLsn;
        this.pump();
        return;
      }
      case 'message':
        if (msg.prefix === SETTLE_PREFIX) {
          const waiter = this.settleWaiters.get(Buffer.from(msg.content).toString());
          if (waiter) {
            waiter.barrier = this.queuedLsn;
            this.resolveSettled();
          }
        }
        return;
      default:
        return; // origin, type, truncate: nothing a subscriber is sent
    }
  }

  private onKeepalive(service: LogicalReplicationService, lsn: string, shouldRespond: boolean): void {
    // Nothing open or waiting: the server has sent everything up to here, and the slot may
    // move on (otherwise an idle database would keep its WAL for ever).
    if (!this.open && this.queue.length === 0 && !this.pumping) this.idleLsn = parseLsn(lsn);
    if (shouldRespond) void this.acknowledge(service);
  }

  /** Reports the confirmed position: everything handed over (or, when idle, all the server sent). */
  private async acknowledge(service: LogicalReplicationService | undefined = this.service): Promise<void> {
    const pos = this.handledLsn > this.idleLsn ? this.handledLsn : this.idleLsn;
    if (!service || pos === 0n) return;
    // pg-logical-replication reports lsn + 1 as flushed; a commit's end position already
    // points past its record, so it is given one less (PostgreSQL's own subscriber reports it as is).
    await service.acknowledge(formatLsn(pos - 1n)).catch(() => undefined);
    this.o.onConfirmed?.(pos);
  }

  private pump(): void {
    this.pumping ??= this.drain().finally(() => {
      this.pumping = undefined;
      if (this.queue.length && !this.stopped) this.pump();
    });
  }

  /** Hands queued transactions over in order, a batch at a time; a failed batch is retried, never skipped. */
  private async drain(): Promise<void> {
    while (this.queue.length) {
      let rows = 0;
      let n = 0;
      while (n < this.queue.length && (n === 0 || rows + this.queue[n]!.changes.length <= this.batchRows)) rows += this.queue[n++]!.changes.length;
      const batch = this.queue.slice(0, n);
      for (;;) {
        try {
          // Not before other sessions see the rows: dispatch's RLS check looks them up (visibility.ts).
          if (!(await waitUntilVisible(this.o.db, batch.map((t) => t.xid), () => this.stopped))) return;
          await this.o.handle(await this.toRows(batch));
          break;
        } catch (err) {
          this.o.onError?.(err);
          this.o.log.error({ err: scrubSecrets((err as Error).message), slot: this.slot }, 'handing WAL changes to dispatch failed; retrying the same transactions');
          await new Promise((r) => setTimeout(r, this.retryMs));
          if (this.stopped) return;
        }
      }
      this.queue.splice(0, n);
      const last = batch[batch.length - 1]!.endLsn;
      if (last > this.handledLsn) this.handledLsn = last;
      await this.acknowledge();
      this.resolveSettled();
    }
  }

  private resolveSettled(): void {
    const idle = this.queue.length === 0;
    for (const [token, w] of this.settleWaiters) {
      if (w.barrier === undefined) continue;
      if (w.barrier <= this.handledLsn || (idle && !this.pumping)) {
        this.settleWaiters.delete(token);
        w.resolve();
      }
    }
  }

  /** Converts decoded transactions into the outbox's row shape, values as to_jsonb gives them. */
  private async toRows(txns: Transaction[]): Promise<CapturedRow[]> {
    const jobs: { columns: Pgoutput.RelationColumn[]; tuple: RawTuple }[] = [];
    const at: { tuple: number | null; old: number | null }[] = [];
    for (const t of txns) {
      for (const c of t.changes) {
        const entry = { tuple: null as number | null, old: null as number | null };
        if (c.tuple) entry.tuple = jobs.push({ columns: c.relation.columns, tuple: c.tuple }) - 1;
        if (c.old) entry.old = jobs.push({ columns: c.relation.columns, tuple: c.old }) - 1;
        at.push(entry);
      }
    }
    const records = await this.decoder.decode(jobs);
    const rows: CapturedRow[] = [];
    let i = 0;
    for (const t of txns) {
      t.changes.forEach((c, j) => {
        const { tuple, old } = at[i++]!;
        let record = tuple === null ? null : records[tuple]!;
        let oldRecord = old === null ? null : records[old]!;
        // A default replica identity sends no old key when the key did not change: it is the new row's.
        if (c.action === 'U' && !oldRecord && record && c.relation.keyColumns.length) {
          oldRecord = Object.fromEntries(c.relation.keyColumns.map((k) => [k, record![k]]));
        }
        // An UPDATE that left a TOASTed value alone does not send it; the old row may have it.
        if (record && oldRecord && c.action === 'U') for (const k of Object.keys(oldRecord)) if (!(k in record)) record = { ...record, [k]: oldRecord[k] };
        const broadcast = c.relation.schema === 'realtime' && c.relation.name === 'messages';
        if (broadcast && (c.action !== 'I' || !record || !isDatabaseBroadcast(record))) return;
        rows.push({
          id: `${formatLsn(t.endLsn)}#${j}`,
          kind: broadcast ? 'broadcast' : 'change',
          schema: c.relation.schema,
          table: c.relation.name,
          action: c.action,
          record,
          oldRecord,
          capturedAt: t.commitMs,
          size: c.size,
        });
      });
    }
    return rows;
  }
}
