// The NATS bus (nats.js, JetStream). Subjects, with <tok> the topic in base64url:
//   <prefix>.h.<tok>   retained messages, stored in the stream <prefix>_hist
//                      (max_msgs_per_subject = historySize: per-topic bounded history)
//   <prefix>.e.<tok>   messages that are not retained (broadcasts, presence diffs): core NATS
// Offsets: each retained message carries its topic's epoch and offset in headers. A node
// publishes offset n+1 with `Nats-Expected-Last-Subject-Sequence` set to the stream
// sequence of offset n, so JetStream refuses it if anyone else published to the topic in
// between; the node then re-reads the topic's last message and retries. Offsets are
// therefore contiguous per topic without a separate counter. A topic with no stored
// message takes its epoch from the KV bucket <prefix>_topics (created once, atomically).
//
// Live feed: one ordered JetStream consumer over <prefix>.h.> per node (it delivers stored
// messages only, in stream order, and recreates itself at the next sequence after a
// disconnect), plus a core subscription to <prefix>.e.>. The hub drops topics it does not serve.
//
// Presence: KV bucket <prefix>_presence, keys m.<node>.<tok>.<ref>; node liveness: KV
// bucket <prefix>_nodes whose entries expire `nodeTimeoutMs` after the node's last heartbeat.
import { randomBytes } from 'node:crypto';
import {
  connect,
  DeliverPolicy,
  Events,
  headers,
  StorageType,
  nanos,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type KV,
  type MsgHdrs,
  type NatsConnection,
  type StoredMsg,
} from 'nats';
import { newEpoch } from '../core/hub.js';
import type { Logger } from '../core/log.js';
import { decodeBody, encodeBody } from './codec.js';
import { backoffMs } from './redis.js';
import {
  BusUnavailableError,
  PRESENCE_TTL_MS,
  topicStateTtlMs,
  type Bus,
  type BusEnvelope,
  type BusHandlers,
  type BusOptions,
  type OutgoingMessage,
  type PresenceEntry,
  type PresenceStore,
  type RecordStore,
  type TopicSnapshot,
} from './types.js';

const EPOCH = 'Fanout-Epoch';
const OFFSET = 'Fanout-Offset';
/** JetStream's "wrong last sequence" error: someone else published to the topic first. */
const WRONG_LAST_SEQUENCE = 10071;
/** JetStream's "no message found". */
const NO_MESSAGE = 10037;
const MAX_PUBLISH_ATTEMPTS = 20;
/** Topics whose last stored sequence this node remembers (for publishing without a read first). */
const LAST_CACHE_SIZE = 10_000;

export function topicToken(topic: string): string {
  return Buffer.from(topic).toString('base64url');
}

function tokenTopic(token: string): string {
  return Buffer.from(token, 'base64url').toString();
}

interface LastStored {
  seq: number;
  epoch: string;
  offset: number;
}

function apiErrorCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } }).api_error?.err_code;
}

export interface NatsBusOptions extends BusOptions {
  /** One URL or a comma-separated list. */
  servers: string;
  log: Logger;
}

/** The JetStream handles of one connection; rebuilt after the server came back without our streams. */
interface Session {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topics: KV;
  members: KV;
  nodes: KV;
  records: KV;
}

export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  readonly nodeId: string;
  readonly presence: PresenceStore;
  readonly records: RecordStore;
  private session: Session | undefined;
  private handlers: BusHandlers | undefined;
  private feed: ConsumerMessages | undefined;
  private feedReady = false;
  private reconnecting = false;
  private closed = false;
  private lastError = 'not connected yet';
  private readonly stream: string;
  private readonly stateTtl: number;
  private readonly last = new Map<string, LastStored>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private setupRun: Promise<void> | undefined;

  constructor(private readonly options: NatsBusOptions) {
    this.nodeId = options.nodeId ?? randomBytes(6).toString('hex');
    this.stream = `${options.prefix}_hist`;
    this.stateTtl = topicStateTtlMs(options);
    this.presence = new NatsPresence(this);
    this.records = {
      get: async (key) => {
        const s = this.live();
        try {
          const e = await s.records.get(topicToken(key));
          return e && e.operation === 'PUT' ? e.string() : undefined;
        } catch (err) {
          throw this.unavailable(err);
        }
      },
      // The bucket's TTL (recordTtlMs) applies; NATS 2.9 has no per-key TTL.
      set: async (key, value) => {
        const s = this.live();
        try {
          await s.records.put(topicToken(key), value);
        } catch (err) {
          throw this.unavailable(err);
        }
      },
    };
  }

  get connected(): boolean {
    return this.session !== undefined && !this.session.nc.isClosed() && !this.reconnecting && this.feedReady;
  }

  get detail(): string {
    if (this.connected) return `connected to ${this.session!.nc.getServer()}`;
    return `not connected to ${this.options.servers} (${this.reconnecting ? 'reconnecting' : this.feedReady ? 'no connection' : 'live feed not running'}; last error: ${this.lastError})`;
  }

  /** @internal The session, or the 503 to answer. */
  live(): Session {
    if (!this.connected) throw new BusUnavailableError('nats', this.detail);
    return this.session!;
  }

  /** @internal */
  get prefix(): string {
    return this.options.prefix;
  }

  /** @internal */
  unavailable(cause: unknown): BusUnavailableError {
    return cause instanceof BusUnavailableError ? cause : new BusUnavailableError('nats', cause instanceof Error ? cause.message : String(cause), { cause });
  }

  async start(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
    await this.connectOnce(0);
  }

  /** Connects, or keeps retrying in the background with back-off when the server is not there. */
  private async connectOnce(attempt: number): Promise<void> {
    if (this.closed) return;
    try {
      const nc = await connect({
        servers: this.options.servers.split(',').map((s) => s.trim()),
        name: `fanout-${this.nodeId}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        reconnectJitter: 250,
        pingInterval: 5_000,
        maxPingOut: 2,
      });
      this.session = { nc, js: nc.jetstream(), jsm: await nc.jetstreamManager(), topics: undefined!, members: undefined!, nodes: undefined!, records: undefined! };
      void this.watchStatus(nc);
      nc.subscribe(`${this.options.prefix}.e.>`, { callback: (err, msg) => !err && this.onEphemeral(msg.subject, msg.string()) });
      await this.setup(false);
    } catch (err) {
      this.lastError = (err as Error).message;
      if (!this.session) {
        const timer = setTimeout(() => void this.connectOnce(attempt + 1), backoffMs(attempt));
        timer.unref();
      }
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) {
        this.reconnecting = true;
        this.handlers?.status?.(false, `disconnected from ${String(s.data)}; reconnecting`);
      } else if (s.type === Events.Reconnect) {
        // The server may have come back without our stream (a new server), or with JetStream not
        // ready yet: set up again (retrying) before saying we are connected.
        void this.retrySetup(0);
      } else if (s.type === Events.Error) {
        this.lastError = String(s.data);
      }
    }
  }

  /** Ensures the stream and buckets exist and the live feed runs; after a reconnect the hub re-checks its replicas. */
  private setup(resync: boolean): Promise<void> {
    this.setupRun ??= (async () => {
      try {
        await this.setupOnce();
        this.reconnecting = false;
        if (resync) this.handlers?.resync();
        this.handlers?.status?.(true, this.detail);
      } finally {
        this.setupRun = undefined;
      }
    })();
    return this.setupRun;
  }

  private async setupOnce(): Promise<void> {
    const session = this.session!;
    const { jsm, js } = session;
    const config = {
      name: this.stream,
      subjects: [`${this.options.prefix}.h.>`],
      max_msgs_per_subject: Math.max(1, this.options.historySize),
      max_age: nanos(this.stateTtl),
      storage: StorageType.File,
      allow_direct: true,
      num_replicas: 1,
    };
    try {
      await jsm.streams.info(this.stream);
      await jsm.streams.update(this.stream, config);
    } catch (err) {
      if ((err as { code?: string }).code !== '404') throw err;
      await jsm.streams.add(config);
    }
    const kv = (name: string, ttl: number) => js.views.kv(`${this.options.prefix}_${name}`, { history: 1, ttl, storage: StorageType.File });
    session.topics = await kv('topics', this.stateTtl);
    session.members = await kv('presence', PRESENCE_TTL_MS);
    session.nodes = await kv('nodes', this.options.nodeTimeoutMs);
    session.records = await kv('records', this.options.recordTtlMs);
    await this.startFeed(session);
  }

  private async startFeed(session: Session): Promise<void> {
    this.feedReady = false;
    this.feed?.stop();
    const info = await session.jsm.streams.info(this.stream);
    const consumer = await session.js.consumers.get(this.stream, {
      filterSubjects: `${this.options.prefix}.h.>`,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: info.state.last_seq + 1,
    });
    const feed = await consumer.consume({ callback: (m) => this.onStored(m), max_messages: 1000 });
    this.feed = feed;
    this.feedReady = true;
    void feed.closed().then(() => {
      if (this.closed || this.feed !== feed) return;
      // The consumer could not carry on (its stream went away): start over, then resync.
      this.feedReady = false;
      this.lastError = 'the live feed consumer stopped';
      this.handlers?.status?.(false, this.detail);
      void this.retrySetup(0);
    });
  }

  private async retrySetup(attempt: number): Promise<void> {
    if (this.closed) return;
    try {
      await this.setup(true);
    } catch (err) {
      this.lastError = (err as Error).message;
      const timer = setTimeout(() => void this.retrySetup(attempt + 1), backoffMs(attempt));
      timer.unref();
    }
  }

  private onStored(m: JsMsg): void {
    const token = m.subject.slice(this.options.prefix.length + 3);
    const topic = tokenTopic(token);
    const stored = readHeaders(m.headers);
    if (!stored) return;
    const cached = this.last.get(topic);
    if (cached && cached.seq < m.seq) this.last.set(topic, { seq: m.seq, ...stored });
    try {
      this.handlers?.message(decodeBody(topic, stored.epoch, stored.offset, m.string()));
    } catch (err) {
      this.options.log.error({ err, topic }, 'undecodable message on the nats bus');
    }
  }

  private onEphemeral(subject: string, text: string): void {
    const topic = tokenTopic(subject.slice(this.options.prefix.length + 3));
    try {
      this.handlers?.message(decodeBody(topic, '', 0, text));
    } catch (err) {
      this.options.log.error({ err, topic }, 'undecodable message on the nats bus');
    }
  }

  publish(message: OutgoingMessage, retain: boolean): Promise<{ epoch: string; offset: number }> {
    let session: Session;
    try {
      session = this.live();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const body = encodeBody(message);
    if (!retain) {
      session.nc.publish(`${this.options.prefix}.e.${topicToken(message.topic)}`, body);
      return Promise.resolve({ epoch: '', offset: 0 });
    }
    // One retained publish per topic at a time from this node: they would only race each other.
    const previous = this.chains.get(message.topic) ?? Promise.resolve();
    const run = previous.then(
      () => this.publishRetained(session, message.topic, body),
      () => this.publishRetained(session, message.topic, body),
    );
    this.chains.set(message.topic, run);
    void run.then(
      () => this.chains.get(message.topic) === run && this.chains.delete(message.topic),
      () => this.chains.get(message.topic) === run && this.chains.delete(message.topic),
    );
    return run;
  }

  private async publishRetained(session: Session, topic: string, body: string): Promise<{ epoch: string; offset: number }> {
    const subject = `${this.options.prefix}.h.${topicToken(topic)}`;
    try {
      for (let attempt = 0; attempt < MAX_PUBLISH_ATTEMPTS; attempt++) {
        const last = this.last.get(topic) ?? (await this.lastStored(session, subject));
        const epoch = last ? last.epoch : await this.emptyEpoch(session, topic);
        const offset = (last?.offset ?? 0) + 1;
        const h = headers();
        h.set(EPOCH, epoch);
        h.set(OFFSET, String(offset));
        try {
          const ack = await session.js.publish(subject, body, { headers: h, expect: { lastSubjectSequence: last?.seq ?? 0 } });
          this.remember(topic, { seq: ack.seq, epoch, offset });
          return { epoch, offset };
        } catch (err) {
          if (apiErrorCode(err) !== WRONG_LAST_SEQUENCE) throw err;
          this.last.delete(topic); // another node published first: read the topic's last message again
        }
      }
      throw new Error(`could not publish to ${topic}: ${MAX_PUBLISH_ATTEMPTS} attempts lost the race with other publishers`);
    } catch (err) {
      this.last.delete(topic);
      throw this.unavailable(err);
    }
  }

  private remember(topic: string, last: LastStored): void {
    this.last.delete(topic);
    this.last.set(topic, last);
    if (this.last.size > LAST_CACHE_SIZE) this.last.delete(this.last.keys().next().value!);
  }

  private async lastStored(session: Session, subject: string): Promise<LastStored | undefined> {
    let m: StoredMsg;
    try {
      m = await session.jsm.streams.getMessage(this.stream, { last_by_subj: subject });
    } catch (err) {
      if (apiErrorCode(err) === NO_MESSAGE) return undefined;
      throw err;
    }
    const stored = readHeaders(m.header);
    if (!stored) throw new Error(`message ${m.seq} on ${subject} has no ${EPOCH}/${OFFSET} headers`);
    return { seq: m.seq, ...stored };
  }

  /** The epoch of a topic with no stored message: created once in the topics bucket, the same for every node. */
  private async emptyEpoch(session: Session, topic: string): Promise<string> {
    const key = topicToken(topic);
    const fresh = newEpoch();
    try {
      await session.topics.create(key, fresh);
      return fresh;
    } catch {
      const entry = await session.topics.get(key);
      if (entry && entry.operation === 'PUT') return entry.string();
      await session.topics.put(key, fresh);
      return fresh;
    }
  }

  async load(topic: string, after: number): Promise<TopicSnapshot> {
    const session = this.live();
    const subject = `${this.options.prefix}.h.${topicToken(topic)}`;
    try {
      const last = await this.lastStored(session, subject);
      if (!last) return { epoch: await this.emptyEpoch(session, topic), offset: 0, messages: [] };
      if (last.offset <= after) return { epoch: last.epoch, offset: last.offset, messages: [] };
      // Read the topic's stored messages (at most historySize) with a short-lived ordered consumer.
      const consumer = await session.js.consumers.get(this.stream, { filterSubjects: subject });
      const messages: BusEnvelope[] = [];
      let offset = last.offset;
      const batch = await consumer.fetch({ max_messages: Math.max(1, this.options.historySize) + 16, expires: 5_000 });
      for await (const m of batch) {
        const stored = readHeaders(m.headers);
        if (stored && stored.epoch === last.epoch) {
          if (stored.offset > after) messages.push(decodeBody(topic, stored.epoch, stored.offset, m.string()));
          offset = Math.max(offset, stored.offset);
        }
        if (m.info.pending === 0) break;
      }
      await consumer.delete().catch(() => undefined);
      return { epoch: last.epoch, offset, messages };
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers = undefined;
    this.feed?.stop();
    const nc = this.session?.nc;
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }
}

function readHeaders(h: MsgHdrs | undefined): { epoch: string; offset: number } | undefined {
  const epoch = h?.get(EPOCH);
  const offset = Number(h?.get(OFFSET));
  return epoch && offset > 0 ? { epoch, offset } : undefined;
}

class NatsPresence implements PresenceStore {
  /** Nodes seen alive at the last heartbeat; a node that disappears from the bucket is dead. */
  private known = new Set<string>();

  constructor(private readonly bus: NatsBus) {}

  private key(node: string, topic: string, ref: string): string {
    return `m.${node}.${topicToken(topic)}.${ref}`;
  }

  private async run<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    const session = this.bus.live();
    try {
      return await fn(session);
    } catch (err) {
      throw this.bus.unavailable(err);
    }
  }

  add(topic: string, entry: PresenceEntry): Promise<void> {
    return this.run(async (s) => {
      await s.members.put(this.key(entry.node, topic, entry.ref), JSON.stringify(entry));
    });
  }

  remove(topic: string, node: string, ref: string): Promise<void> {
    return this.run(async (s) => {
      await s.members.purge(this.key(node, topic, ref));
    });
  }

  private async liveNodes(s: Session): Promise<Set<string>> {
    const out = new Set<string>();
    for await (const k of await s.nodes.keys()) out.add(k);
    return out;
  }

  list(topic: string): Promise<PresenceEntry[]> {
    return this.run(async (s) => {
      const alive = await this.liveNodes(s);
      alive.add(this.bus.nodeId);
      const keys: string[] = [];
      for await (const k of await s.members.keys(`m.*.${topicToken(topic)}.*`)) keys.push(k);
      const out: PresenceEntry[] = [];
      for (const k of keys) {
        if (!alive.has(k.split('.')[1]!)) continue;
        const e = await s.members.get(k);
        if (e && e.operation === 'PUT') out.push(JSON.parse(e.string()) as PresenceEntry);
      }
      return out;
    });
  }

  heartbeat(): Promise<string[]> {
    return this.run(async (s) => {
      await s.nodes.put(this.bus.nodeId, String(Date.now()));
      const alive = await this.liveNodes(s);
      const dead: string[] = [];
      for (const node of this.known) {
        if (alive.has(node)) continue;
        // Every survivor notices; the one whose claim is created first cleans up.
        try {
          await s.members.create(`c.${node}`, this.bus.nodeId);
          dead.push(node);
        } catch {
          // claimed by another node
        }
      }
      this.known = alive;
      return dead;
    });
  }

  takeOver(node: string): Promise<Map<string, PresenceEntry[]>> {
    return this.run(async (s) => {
      const out = new Map<string, PresenceEntry[]>();
      const keys: string[] = [];
      for await (const k of await s.members.keys(`m.${node}.>`)) keys.push(k);
      for (const k of keys) {
        const e = await s.members.get(k);
        if (e && e.operation === 'PUT') {
          const entry = JSON.parse(e.string()) as PresenceEntry;
          const topic = tokenTopic(k.split('.')[2]!);
          let list = out.get(topic);
          if (!list) out.set(topic, (list = []));
          list.push(entry);
        }
        await s.members.purge(k);
      }
      return out;
    });
  }
}
