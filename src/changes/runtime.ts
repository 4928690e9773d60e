// The database's life in the gateway: open it (PostgreSQL from DATABASE_URL, or the
// embedded PGlite), make sure Fanout's schema is there (the embedded database is migrated
// automatically; a PostgreSQL server is migrated on purpose, with `fanout migrate`), and
// start the outbox consumer that feeds the dispatcher.
//
// `eager` opens at start-up in the background (so `fanout serve` is ready promptly and
// replays what was committed while it was down); `lazy` waits for the first use (a join
// with postgres_changes, a private channel, the comments API), which keeps short-lived
// gateways (tests of other features) from paying for a database they never touch. Opening
// failures are retried; callers waiting on `parts()` get the error.
import { warnIfSuperuser } from './login-role.js';
import type { Hub } from '../core/hub.js';
import type { Logger } from '../core/log.js';
import type { GatewayMetrics } from '../server/metrics.js';
import { Catalog } from './catalog.js';
import { openDatabase, type Database } from './database.js';
import { ChangeDispatcher } from './dispatcher.js';
import { OutboxConsumer } from './outbox.js';
import { ChangeFeedLeader, ChangeFollower, publishNotice, publishWindow } from './leader.js';
import type { CapturedRow } from './outbox.js';
import { LATEST_VERSION, migrate, schemaVersion, syncCaptureTriggers } from './schema.js';
import { chooseCapture, type CaptureMode, type CaptureSetting } from './wal/capture-mode.js';
import { makeChangeReader } from './wal/capture.js';
import { SlotLagMonitor } from './wal/lag.js';
import { slotName } from './wal/slot.js';

/** What reads the outbox: this gateway's own consumer, or (in a cluster) the leader election around one. */
export interface FeedReader {
  stop(): Promise<void>;
  /** Resolves once everything committed before the call has been handled (tests). */
  settle(): Promise<void>;
}

export interface RuntimeParts {
  db: Database;
  catalog: Catalog;
  dispatcher: ChangeDispatcher;
  consumer: FeedReader;
  /** How changes are captured (--changes-capture, resolved). */
  capture: CaptureMode;
}

export interface RuntimeOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  start: 'eager' | 'lazy';
  replayMs: number;
  /** Cursor name: one per gateway sharing a database. */
  consumer: string;
  /** --changes-capture. */
  capture?: CaptureSetting;
  hub: Hub;
  /** Other gateways share the hub's bus (and may share this database): capture once per cluster, through a leader. */
  sharedBus: boolean;
  metrics: GatewayMetrics;
  log: Logger;
  /** Cluster mode: told when this gateway becomes or stops being the change-feed leader. */
  onLeader?: (leading: boolean) => void;
}

const RETRY_MS = 5000;

export class DatabaseRuntime {
  private state: 'idle' | 'opening' | 'running' | 'failed' | 'closed' = 'idle';
  private opening: Promise<RuntimeParts> | undefined;
  private running: RuntimeParts | undefined;
  private retry: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;
  private readonly closing = new AbortController();

  constructor(private readonly o: RuntimeOptions) {}

  /** Open in the background now (eager start). */
  start(): void {
    if (this.o.start === 'eager') this.parts().catch(() => undefined);
  }

  /**
   * Connected and capturing. A lazy runtime that has not been needed yet counts as ready:
   * nothing is known to be wrong, and it opens on first use.
   */
  get ready(): boolean {
    return this.state === 'running' || (this.state === 'idle' && this.o.start === 'lazy');
  }

  get error(): Error | undefined {
    return this.state === 'failed' ? this.lastError : undefined;
  }

  /** The open database and feed machinery, opening them if needed. */
  parts(): Promise<RuntimeParts> {
    if (this.running) return Promise.resolve(this.running);
    if (this.state === 'closed') return Promise.reject(new Error('the gateway is shutting down'));
    this.opening ??= this.open().then(
      (parts) => {
        this.opening = undefined;
        if (this.state === 'closed') {
          void shutdown(parts);
          throw new Error('the gateway is shutting down');
        }
        this.running = parts;
        this.state = 'running';
        return parts;
      },
      (err: unknown) => {
        this.opening = undefined;
        this.lastError = err as Error;
        if (this.state !== 'closed') {
          this.state = 'failed';
          this.o.log.error({ err: (err as Error).message }, `database unavailable; retrying in ${RETRY_MS / 1000} s`);
          if (this.o.start === 'eager' && !this.retry) {
            this.retry = setTimeout(() => {
              this.retry = undefined;
              this.parts().catch(() => undefined);
            }, RETRY_MS);
            this.retry.unref();
          }
        }
        throw err;
      },
    );
    this.state = 'opening';
    return this.opening;
  }

  async close(): Promise<void> {
    const wasRunning = this.running;
    this.state = 'closed';
    if (this.retry) clearTimeout(this.retry);
    this.closing.abort();
    if (this.opening) await this.opening.catch(() => undefined);
    this.running = undefined;
    if (wasRunning) await shutdown(wasRunning);
  }

  private async open(): Promise<RuntimeParts> {
    const { log } = this.o;
    const started = Date.now();
    const db = await openDatabase({ databaseUrl: this.o.databaseUrl, dataDir: this.o.dataDir, log, signal: this.closing.signal });
    try {
      if (db.kind === 'pglite') {
        const result = await migrate(db);
        if (result.applied.length) log.info({ applied: result.applied.map((m) => m.version) }, 'migrated the embedded database');
      } else {
        const version = await schemaVersion(db);
        if (version < LATEST_VERSION) {
          throw new Error(
            `the database at ${db.location} ${version === 0 ? "does not have Fanout's realtime schema" : `is at schema version ${version}, this gateway needs ${LATEST_VERSION}`}: run \`fanout migrate\` with the same --database-url`,
          );
        }
        await syncCaptureTriggers(db).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not sync capture triggers (the event trigger keeps them in step)'));
        await warnIfSuperuser(db, log).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not check whether the database login role is a superuser'));
      }
      const catalog = new Catalog(db);
      const dispatcher = new ChangeDispatcher({
        db,
        catalog,
        hub: this.o.hub,
        metrics: this.o.metrics,
        log,
        match: { codePointCollation: await catalog.codePointCollation() },
        replayMs: this.o.replayMs,
      });
      const outbox = (handle: (rows: CapturedRow[]) => Promise<void>) =>
        new OutboxConsumer(db, handle, log, {
          consumer: this.o.consumer,
          onError: () => this.o.metrics.errors.labels('database').inc(),
          // Without the event trigger (a non-superuser migrated), tables added to the
          // publication are picked up here within seconds.
          maintenance: () => syncCaptureTriggers(db),
        });
      const capture = await chooseCapture(db, this.o.capture ?? 'auto', this.o.databaseUrl);
      log.info(
        { capture: capture.mode, reason: capture.reason, ...(capture.mode === 'wal' ? { slot: slotName(this.o.consumer) } : {}) },
        capture.mode === 'wal' ? 'postgres changes are captured from the write-ahead log (logical replication, no triggers)' : 'postgres changes are captured by triggers into the outbox',
      );
      const reader = (handle: (rows: CapturedRow[]) => Promise<void>, notice: (message: string) => void) =>
        makeChangeReader(
          { mode: capture.mode, db, databaseUrl: this.o.databaseUrl, consumer: this.o.consumer, log, outbox, onError: () => this.o.metrics.errors.labels('database').inc() },
          handle,
          notice,
        );
      let consumer: FeedReader;
      if (this.o.sharedBus && db.kind === 'postgres' && this.o.databaseUrl) {
        // A cluster sharing this database: one leader reads the outbox and publishes to the bus; every node dispatches.
        const hub = this.o.hub;
        const follower = new ChangeFollower(hub, dispatcher, log);
        follower.start();
        const leader = new ChangeFeedLeader({
          databaseUrl: this.o.databaseUrl,
          consumer: this.o.consumer,
          makeConsumer: () =>
            reader(
              (rows) => publishWindow(hub, rows),
              (message) => void publishNotice(hub, message).catch((err: unknown) => log.warn({ err }, 'could not publish a change-feed notice to the cluster')),
            ),
          log,
          onChange: this.o.onLeader,
        });
        leader.start();
        consumer = {
          settle: () => leader.settle(),
          stop: async () => {
            follower.stop();
            await leader.stop();
          },
        };
      } else {
        if (this.o.sharedBus) log.warn('the embedded database is this gateway’s own: its changes reach only its own subscribers (give the cluster one DATABASE_URL)');
        const own = reader(
          (rows) => dispatcher.process(rows),
          (message) => void dispatcher.notice(message),
        );
        await own.start();
        consumer = own;
      }
      if (capture.mode === 'wal') {
        const lag = new SlotLagMonitor(db, slotName(this.o.consumer), this.o.metrics, log);
        lag.start();
        const inner = consumer;
        consumer = {
          settle: () => inner.settle(),
          stop: async () => {
            lag.stop();
            await inner.stop();
          },
        };
      }
      log.info({ database: db.kind, location: db.location, ms: Date.now() - started }, 'change feed running');
      return { db, catalog, dispatcher, consumer, capture: capture.mode };
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }
}

async function shutdown(parts: RuntimeParts): Promise<void> {
  await parts.consumer.stop();
  await parts.db.close();
}
