// The change feed in a cluster: captured once per cluster, dispatched on every node.
//
// Gateways that share one PostgreSQL database and one bus elect a leader with a
// PostgreSQL advisory lock held on a dedicated session (`pg_try_advisory_lock`, retried by
// the others every few seconds; a leader that dies or loses its session releases the lock
// with it). Only the leader runs the outbox consumer. It publishes each window of
// captured changes, in commit order, as retained messages on the internal hub topic
// `internal:changes` (through the bus, which numbers them), and `realtime.send()` rows as
// broadcasts; the cursor is saved only after the bus took them, so a change is never lost
// between the database and the bus. Every node (the leader too) follows that topic and
// hands each window to its own dispatcher, which matches and RLS-checks the changes for
// the subscribers connected to that node. A node whose bus feed had a gap gets it filled
// from the topic's history by the hub, like any other stream.
import pg from 'pg';
import type { Hub, HubMessage, Subscriber } from '../core/hub.js';
import type { Logger } from '../core/log.js';
import type { ChangeDispatcher } from './dispatcher.js';
import { publishMessageRow } from './message-broadcast.js';
import type { CapturedRow } from './outbox.js';

export const CHANGES_TOPIC = 'internal:changes';

/** Windows are split into bus messages of about this many bytes (NATS refuses messages over 1 MB by default). */
const CHUNK_BYTES = 256 * 1024;

/**
 * The leader's handler for a window read from the outbox: broadcasts to their channels,
 * changes to the cluster topic, in order. Resolves once the bus took everything.
 */
export async function publishWindow(hub: Hub, rows: CapturedRow[]): Promise<void> {
  let chunk: CapturedRow[] = [];
  let bytes = 0;
  const flush = async () => {
    if (!chunk.length) return;
    const rows = chunk;
    chunk = [];
    bytes = 0;
    await hub.publish(CHANGES_TOPIC, 'changes', rows);
  };
  for (const row of rows) {
    if (row.kind === 'broadcast') {
      await flush();
      await publishMessageRow(hub, row.record ?? {});
      continue;
    }
    if (bytes + row.size > CHUNK_BYTES) await flush();
    chunk.push(row);
    bytes += row.size + 256;
  }
  await flush();
}

/** Every node: hands the windows published on the cluster topic to the local dispatcher, in order. */
export class ChangeFollower implements Subscriber {
  private started = false;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly hub: Hub,
    private readonly dispatcher: ChangeDispatcher,
    private readonly log: Logger,
  ) {}

  /** Subscribes once the hub's replica of the topic is loaded (retrying while the bus is down). */
  start(): void {
    if (this.stopped || this.started) return;
    this.hub.prepare([CHANGES_TOPIC]).then(
      () => {
        if (this.stopped || this.started) return;
        this.started = true;
        this.hub.subscribe(CHANGES_TOPIC, this);
      },
      (err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'cannot follow the cluster change feed yet (bus unavailable); retrying');
        this.retry = setTimeout(() => this.start(), 1000);
        this.retry.unref();
      },
    );
  }

  deliver(m: HubMessage): void {
    if (m.event === 'notice') {
      void this.dispatcher.notice((m.data as { message: string }).message);
      return;
    }
    if (m.event !== 'changes') return;
    this.dispatcher.process(m.data as CapturedRow[]).catch((err: unknown) => this.log.error({ err }, 'failed to dispatch changes from the cluster feed'));
  }

  interrupted(): void {
    this.log.error('the cluster change feed had a gap its history could not fill: changes were lost for this node’s subscribers');
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.started) this.hub.unsubscribe(CHANGES_TOPIC, this);
  }
}

/** What the leader runs while it leads: the outbox consumer, or WAL capture (src/changes/wal/reader.ts). */
export interface ChangeReader {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves once everything committed before the call was handed over. */
  settle(): Promise<void>;
}

/** The leader's notice to every node's subscribers (capture lost changes), on the cluster topic. */
export function publishNotice(hub: Hub, message: string): Promise<unknown> {
  return hub.publish(CHANGES_TOPIC, 'notice', { message });
}

export interface LeaderOptions {
  databaseUrl: string;
  /** The cursor name: gateways with the same consumer name elect one leader. */
  consumer: string;
  /** Makes the reader the leader runs (a new one per term). */
  makeConsumer: () => ChangeReader;
  log: Logger;
  /** Told when this node becomes leader (true) or stops being leader (false). */
  onChange?: (leading: boolean) => void;
  retryMs?: number;
}

/** Holds (or keeps trying to take) the cluster's change-feed lock; runs the consumer while it holds it. */
export class ChangeFeedLeader {
  private client: pg.Client | undefined;
  private consumer: ChangeReader | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempting: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly o: LeaderOptions) {}

  get leading(): boolean {
    return this.consumer !== undefined;
  }

  start(): void {
    void this.attempt();
    this.timer = setInterval(() => void this.attempt(), this.o.retryMs ?? 2000);
    this.timer.unref();
  }

  /** Resolves once everything committed before the call was published (tests); a no-op on a follower. */
  async settle(): Promise<void> {
    await this.consumer?.settle();
  }

  private attempt(): Promise<void> {
    if (this.stopped || this.consumer) return Promise.resolve();
    this.attempting ??= this.tryLead().finally(() => (this.attempting = undefined));
    return this.attempting;
  }

  private async tryLead(): Promise<void> {
    try {
      if (!this.client) {
        const client = new pg.Client({ connectionString: this.o.databaseUrl, application_name: 'fanout-change-feed-lock' });
        client.on('error', (err) => void this.lost(client, err.message));
        client.on('end', () => void this.lost(client, 'connection ended'));
        await client.connect();
        this.client = client;
      }
      const { rows } = await this.client.query<{ ok: boolean }>('select pg_try_advisory_lock(hashtextextended($1, 0)) as ok', [`fanout:change-feed:${this.o.consumer}`]);
      if (!rows[0]?.ok || this.stopped) return;
      const consumer = this.o.makeConsumer();
      try {
        await consumer.start();
      } catch (err) {
        // Give the lock back (by ending its session) so another gateway can lead.
        if (this.client) await this.lost(this.client, `the change reader did not start: ${(err as Error).message}`);
        throw err;
      }
      this.consumer = consumer;
      this.o.log.info({ consumer: this.o.consumer }, 'this gateway leads the cluster change feed: it captures the changes and publishes them to the bus');
      this.o.onChange?.(true);
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'change-feed leader election failed; retrying');
    }
  }

  /** The lock's session is gone, and the lock with it: stop reading at once (another node may take over). */
  private async lost(client: pg.Client, why: string): Promise<void> {
    if (this.client !== client) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    await this.depose(why);
  }

  private async depose(why: string): Promise<void> {
    const consumer = this.consumer;
    if (!consumer) return;
    this.consumer = undefined;
    this.o.onChange?.(false);
    if (!this.stopped) this.o.log.warn({ reason: why }, 'lost the change-feed lock; another gateway takes over');
    await consumer.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.attempting;
    await this.depose('shutdown');
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined); // releases the lock
    }
  }
}
