// Reads captured changes out of `realtime.fanout_changes` exactly once, in order, durably.
//
// Rows are ordered by the snapshot in which their transaction became visible, not by id:
// ids come from a sequence at write time, so a long transaction can commit a low id after
// a short one committed a higher id, and a cursor over ids would skip it. Instead (as
// PgQ does) the consumer remembers the snapshot it last read at; the next window is every
// row whose transaction is visible in the current snapshot but was not in the previous one.
// Each committed transaction falls in exactly one window. The window's snapshot is saved in
// `realtime.fanout_cursor` after its rows were handled, so after a crash or restart reading
// resumes where it stopped (a change may be delivered twice after a crash, never lost).
//
// NOTIFY from the capture trigger wakes the consumer; a slow timer polls as well, in case a
// notification was lost with a dropped connection.
import type { Logger } from '../core/log.js';
import type { Database } from './database.js';
import { CONSUMER, NOTIFY_CHANNEL } from './schema.js';

export interface CapturedRow {
  /** Outbox id (bigint as text). */
  id: string;
  kind: 'change' | 'broadcast';
  schema: string;
  table: string;
  action: 'I' | 'U' | 'D';
  record: Record<string, unknown> | null;
  oldRecord: Record<string, unknown> | null;
  /** When the row was written (ms since the epoch): the change's commit_timestamp. */
  capturedAt: number;
  /** Bytes of the captured JSON, for Supabase's 1 MB payload limit. */
  size: number;
}

/** One page of a window: $1 previous snapshot, $2 current snapshot (null: take one now), $3/$4 (txid, id) to continue after, $5 page size. */
export const WINDOW_SQL = `with s as materialized (select coalesce($2::pg_snapshot, pg_current_snapshot()) as cur, $1::pg_snapshot as prev),
  w as (
    (select c.* from s, realtime.fanout_changes c
     where c.txid = any (array(select pg_snapshot_xip(s.prev)))
       and (c.txid, c.id) > ($3::xid8, $4::bigint) and pg_visible_in_snapshot(c.txid, s.cur)
     order by c.txid, c.id limit $5)
    union all
    (select c.* from s, realtime.fanout_changes c
     where c.txid >= pg_snapshot_xmax(s.prev) and c.txid < pg_snapshot_xmax(s.cur)
       and (c.txid, c.id) > ($3::xid8, $4::bigint) and pg_visible_in_snapshot(c.txid, s.cur)
     order by c.txid, c.id limit $5)
  )
  select s.cur::text as snapshot, c.txid::text as txid, c.id::text as id, c.kind, c.schema_name as schema, c.table_name as table,
         c.action::text as action, c.record, c.old_record, (extract(epoch from c.captured_at) * 1000)::float8 as captured_at,
         (octet_length(coalesce(c.record::text, '')) + octet_length(coalesce(c.old_record::text, '')))::int as size
  from s left join lateral (select * from w order by w.txid, w.id limit $5) c on true`;

interface WindowRow {
  snapshot: string;
  txid: string | null;
  id: string | null;
  kind: 'change' | 'broadcast';
  schema: string;
  table: string;
  action: 'I' | 'U' | 'D';
  record: Record<string, unknown> | null;
  old_record: Record<string, unknown> | null;
  captured_at: number;
  size: number;
}

export interface OutboxOptions {
  /** Cursor name (one row in realtime.fanout_cursor per consumer). */
  consumer?: string;
  /** Minimum time between two reads, so a stream of commits is read in batches. */
  batchMs?: number;
  /** Rows read per query. */
  pageSize?: number;
  /** Fallback poll period when no NOTIFY arrives. */
  pollMs?: number;
  /** Minimum period between cursor writes (the cursor is always written on stop). */
  persistMs?: number;
  /** Period of deleting rows every consumer has passed. */
  cleanupMs?: number;
  /** Periodic upkeep run with the cleanup (e.g. re-syncing capture triggers); failures are logged once. */
  maintenance?: () => Promise<void>;
  /** Called when reading fails (for metrics); the consumer retries on its own. */
  onError?: (err: unknown) => void;
}

export class OutboxConsumer {
  private snapshot = '';
  private persisted = '';
  private lastPersist = 0;
  private lastCleanup = Date.now();
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private persistTimer: NodeJS.Timeout | undefined;
  private failing = false;
  private maintenanceWarned = false;
  private readonly pageSize: number;
  private readonly pollMs: number;
  private readonly persistMs: number;
  private readonly cleanupMs: number;
  private readonly consumer: string;
  private readonly batchMs: number;
  private lastRead = 0;

  constructor(
    private readonly db: Database,
    private readonly handle: (rows: CapturedRow[]) => Promise<void>,
    private readonly log: Logger,
    private readonly options: OutboxOptions = {},
  ) {
    this.pageSize = options.pageSize ?? 1000;
    this.pollMs = options.pollMs ?? 1000;
    this.persistMs = options.persistMs ?? 200;
    this.cleanupMs = options.cleanupMs ?? 10_000;
    this.consumer = options.consumer ?? CONSUMER;
    this.batchMs = options.batchMs ?? 5;
  }

  async start(): Promise<void> {
    const { rows } = await this.db.query<{ snapshot: string }>('select snapshot::text as snapshot from realtime.fanout_cursor where consumer = $1', [this.consumer]);
    if (rows[0]) {
      this.snapshot = this.persisted = rows[0].snapshot;
    } else {
      // A database migrated without a cursor row (should not happen): start from now.
      const cur = await this.currentSnapshot();
      await this.db.query('insert into realtime.fanout_cursor (consumer, snapshot) values ($1, $2::pg_snapshot) on conflict (consumer) do nothing', [this.consumer, cur]);
      this.snapshot = this.persisted = cur;
    }
    await this.db.listen(
      NOTIFY_CHANNEL,
      () => this.wake(),
      () => this.wake(),
    );
    this.timer = setInterval(() => this.wake(), this.pollMs);
    this.timer.unref();
    this.wake();
  }

  /**
   * Hands over every captured row from the saved cursor up to `target` (a pg_snapshot) and
   * saves the cursor there, without listening or polling: what a consumer switching to WAL
   * capture still owes its subscribers (the slot decodes what `target` does not show).
   */
  async drainTo(target: string): Promise<void> {
    const { rows } = await this.db.query<{ snapshot: string }>('select snapshot::text as snapshot from realtime.fanout_cursor where consumer = $1', [this.consumer]);
    if (!rows[0]) throw new Error(`no change-feed cursor named ${this.consumer}`);
    this.snapshot = this.persisted = rows[0].snapshot;
    await this.readWindow(target);
    await this.persist(true);
  }

  /** Reads whatever has committed since the last read (coalesced: one reader at a time). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves once everything committed before the call has been handled (tests, shutdown). */
  async settle(): Promise<void> {
    const target = await this.currentSnapshot();
    while (!this.stopped) {
      const { rows } = await this.db.query<{ done: boolean }>(
        `select pg_snapshot_xmin($1::pg_snapshot) <= pg_snapshot_xmin($2::pg_snapshot) and pg_snapshot_xmax($1::pg_snapshot) <= pg_snapshot_xmax($2::pg_snapshot) as done`,
        [target, this.snapshot],
      );
      if (rows[0]?.done && !this.running) return;
      this.wake();
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.persistTimer) clearTimeout(this.persistTimer);
    await this.running;
    await this.persist(true).catch((err: unknown) => this.log.warn({ err }, 'could not save the change-feed cursor on shutdown'));
  }

  private async loop(): Promise<void> {
    do {
      // Under a stream of commits every NOTIFY would start a read of one or two rows; a
      // short pause between reads lets each one carry a batch (fewer queries per change,
      // at most batchMs of added latency).
      const wait = this.lastRead + this.batchMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.lastRead = Date.now();
      this.again = false;
      try {
        await this.readWindow();
        await this.persist(false);
        await this.cleanup();
        if (this.failing) this.log.info('change feed reading again');
        this.failing = false;
      } catch (err) {
        this.options.onError?.(err);
        if (!this.failing) this.log.error({ err }, 'reading captured changes failed; retrying');
        this.failing = true;
        return; // the poll timer retries
      }
    } while (this.again && !this.stopped);
  }

  private async currentSnapshot(): Promise<string> {
    const { rows } = await this.db.query<{ s: string }>('select pg_current_snapshot()::text as s');
    return rows[0]!.s;
  }

  /**
   * Reads one window: rows whose transaction is visible in a fresh snapshot but was not in
   * the previous one. "Not visible before" means in progress then (in its xip list) or
   * started after it (at or past its xmax): two ranges of the (txid, id) index, read in
   * (txid, id) order — each transaction's rows together — and paged by that key, so a poll
   * costs the rows it returns, not everything written since some old transaction began.
   * The first page takes the snapshot in the same statement, saving a round trip.
   */
  private async readWindow(target: string | null = null): Promise<void> {
    const prev = this.snapshot;
    let cur: string | null = target;
    let afterTxid = '0';
    let afterId = '0';
    for (;;) {
      const { rows }: { rows: WindowRow[] } = await this.db.query<WindowRow>(
        WINDOW_SQL,
        [prev, cur, afterTxid, afterId, this.pageSize],
      );
      const snapshot: string = rows[0]!.snapshot;
      cur = snapshot;
      const found = rows.filter((r) => r.id !== null);
      if (found.length) {
        await this.handle(
          found.map((r) => ({
            id: r.id!,
            kind: r.kind,
            schema: r.schema,
            table: r.table,
            action: r.action,
            record: r.record,
            oldRecord: r.old_record,
            capturedAt: r.captured_at,
            size: r.size,
          })),
        );
      }
      if (found.length < this.pageSize) break;
      const last = found[found.length - 1]!;
      afterTxid = last.txid!;
      afterId = last.id!;
    }
    if (cur !== null) this.snapshot = cur;
  }

  private async persist(force: boolean): Promise<void> {
    if (this.snapshot === this.persisted) return;
    if (!force && Date.now() - this.lastPersist < this.persistMs) {
      // Write it a little later if nothing else wakes the consumer before then.
      if (!this.persistTimer) {
        this.persistTimer = setTimeout(() => {
          this.persistTimer = undefined;
          this.wake();
        }, this.persistMs);
        this.persistTimer.unref();
      }
      return;
    }
    const snapshot = this.snapshot;
    await this.db.query('update realtime.fanout_cursor set snapshot = $2::pg_snapshot, updated_at = now() where consumer = $1', [this.consumer, snapshot]);
    this.persisted = snapshot;
    this.lastPersist = Date.now();
  }

  /** Deletes rows every consumer's saved cursor has passed: they can never be read again. */
  private async cleanup(): Promise<void> {
    if (Date.now() - this.lastCleanup < this.cleanupMs) return;
    this.lastCleanup = Date.now();
    // Cursors of WAL consumers that have delivered their share of the outbox hold nothing back.
    await this.db.query(
      `delete from realtime.fanout_changes where txid < (select min(pg_snapshot_xmin(snapshot)) from realtime.fanout_cursor
         where capture = 'outbox' or outbox_until is null or snapshot::text <> outbox_until::text)`,
    );
    // Supabase keeps realtime.messages partitions for a few days; so do we.
    await this.db.query(`delete from realtime.messages where inserted_at < now() - interval '3 days'`);
    await this.options.maintenance?.().catch((err: unknown) => {
      if (!this.maintenanceWarned) this.log.warn({ err: (err as Error).message }, 'change-feed maintenance failed');
      this.maintenanceWarned = true;
    });
  }
}
