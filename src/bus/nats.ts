// The NATS bus (nats.js, JetStream). Subjects, with <tok> the topic in base64url:
//   <prefix>.h.<tok>   retained messages, stored in the stream <prefix>_hist
//                      (max_msgs_per_subject = historySize: per-topic bounded history)
//   <prefix>.r.<tok>   each stored message republished by JetStream (RePublish), in stream order
//   <prefix>.e.<tok>   messages that are not retained (broadcasts, presence diffs): core NATS
// Offsets: each retained message carries its topic's epoch and offset in headers. A node
// publishes offset n+1 with `Nats-Expected-Last-Subject-Sequence` set to the stream
// sequence of offset n, so JetStream refuses it if anyone else published to the topic in
// between; the node then re-reads the topic's last message and retries. Offsets are
// therefore contiguous per topic without a separate counter. A topic with no stored
// message takes its epoch from the KV bucket <prefix>_topics (created once, atomically).
// A publication id travels as `Nats-Msg-Id`, so JetStream's duplicate window drops a retry.
//
// Live feed, by interest: a node subscribes (core NATS) to <prefix>.r.<tok> and
// <prefix>.e.<tok> of the topics its clients use, and to nothing else. Core NATS does not
// replay what a disconnected node missed: after a reconnect the hub re-checks its
// replicas against the stored messages, read per topic (`load`).
//
// Presence: KV bucket <prefix>_presence, keys m.<node>.<tok>.<ref>; node liveness: KV
// bucket <prefix>_nodes whose entries expire `nodeTimeoutMs` after the node's last heartbeat
// (the store is nats-presence.ts).
//
// It stays one file: connecting, setting up the stream and buckets, the
// optimistic publish with its retries, and `load` all share one session and one
// last-stored cache, and the ordering argument above holds only read together.
import { randomBytes } from 'node:crypto';
import {
  connect,
  Events,
  headers,
  StorageType,
  nanos,
  type JetStreamClient,
  type JetStreamManager,
  type KV,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type StoredMsg,
  type Subscription,
} from 'nats';
import { newEpoch } from '../core/hub.js';
import type { Logger } from '../core/log.js';
import { decodeBody, encodeBody, topicToken } from './codec.js';
import { NatsPresence } from './nats-presence.js';
import { backoffMs } from './redis.js';
import {
  BusUnavailableError,
  PRESENCE_TTL_MS,
  topicStateTtlMs,
  type Bus,
  type BusEnvelope,
  type BusHandlers,
  type BusOptions,
  type PresenceStore,
  type Publication,
  type Published,
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
  /** Test hook: called before each topic of a publication is stored, so a test can fail it part-way. */
  betweenTopics?: (topic: string, index: number) => void;
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
  /** Ids of publications that are not retained, already published (JetStream deduplicates the others). */
  dedupe: KV;
}

export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  readonly shared = true;
  readonly nodeId: string;
  readonly presence: PresenceStore;
  readonly records: RecordStore;
  private session: Session | undefined;
  private handlers: BusHandlers | undefined;
  /** The live-feed subscriptions of each followed topic (stored and ephemeral subjects). */
  private readonly follows = new Map<string, Subscription[]>();
  /** True once the stream and buckets exist on the current connection. */
  private setUp = false;
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
    return this.session !== undefined && !this.session.nc.isClosed() && !this.reconnecting && this.setUp;
  }

  get detail(): string {
    if (this.connected) return `connected to ${this.session!.nc.getServer()}`;
    return `not connected to ${this.options.servers} (${this.reconnecting ? 'reconnecting' : this.setUp ? 'no connection' : 'stream not set up'}; last error: ${this.lastError})`;
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
      this.session = { nc, js: nc.jetstream(), jsm: await nc.jetstreamManager(), topics: undefined!, members: undefined!, nodes: undefined!, records: undefined!, dedupe: undefined! };
      void this.watchStatus(nc);
      // Topics followed before the first connection: subscribe now (nats.js keeps them across reconnects).
      for (const topic of this.follows.keys()) this.follows.set(topic, this.subscribeTopic(nc, topic));
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
      // Every stored message, headers included, also goes out on its topic's live subject.
      republish: { src: `${this.options.prefix}.h.>`, dest: `${this.options.prefix}.r.>` },
      duplicate_window: nanos(this.options.dedupeTtlMs),
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
    session.dedupe = await kv('dedupe', this.options.dedupeTtlMs);
    this.setUp = true;
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

  get subscriptions(): number {
    return this.follows.size;
  }

  async subscribe(topic: string): Promise<void> {
    if (!this.follows.has(topic)) {
      const nc = this.session?.nc;
      this.follows.set(topic, nc && !nc.isClosed() ? this.subscribeTopic(nc, topic) : []);
    }
    const session = this.live();
    try {
      // Once the server has processed the subscription, every later message reaches this node.
      await session.nc.flush();
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  unsubscribe(topic: string): void {
    const subs = this.follows.get(topic);
    if (!subs) return;
    this.follows.delete(topic);
    for (const sub of subs) sub.unsubscribe();
  }

  private subscribeTopic(nc: NatsConnection, topic: string): Subscription[] {
    const tok = topicToken(topic);
    return [
      nc.subscribe(`${this.options.prefix}.r.${tok}`, { callback: (err, m) => !err && this.onStored(topic, m) }),
      nc.subscribe(`${this.options.prefix}.e.${tok}`, { callback: (err, m) => !err && this.onEphemeral(topic, m.string()) }),
    ];
  }

  private onStored(topic: string, m: Msg): void {
    const stored = readHeaders(m.headers);
    if (!stored) return;
    const seq = Number(m.headers?.get('Nats-Sequence'));
    const cached = this.last.get(topic);
    if (cached && cached.seq < seq) this.last.set(topic, { seq, ...stored });
    try {
      this.handlers?.message(decodeBody(topic, stored.epoch, stored.offset, m.string()));
    } catch (err) {
      this.options.log.error({ err, topic }, 'undecodable message on the nats bus');
    }
  }

  private onEphemeral(topic: string, text: string): void {
    try {
      this.handlers?.message(decodeBody(topic, '', 0, text));
    } catch (err) {
      this.options.log.error({ err, topic }, 'undecodable message on the nats bus');
    }
  }

  async publish(p: Publication): Promise<Published[]> {
    const session = this.live();
    const body = encodeBody(p);
    if (!p.retain) {
      if (p.id !== undefined) {
        // Published once per id: the first node to create the id's key publishes.
        try {
          await session.dedupe.create(topicToken(p.id), '1');
        } catch (err) {
          if (!/wrong last sequence/i.test((err as Error).message)) throw this.unavailable(err);
          return p.topics.map(() => ({ epoch: '', offset: 0, duplicate: true }));
        }
      }
      for (const topic of p.topics) session.nc.publish(`${this.options.prefix}.e.${topicToken(topic)}`, body);
      return p.topics.map(() => ({ epoch: '', offset: 0 }));
    }
    // The topics are stored side by side (one round trip in all); the publication id makes a
    // retry after a partial failure complete what is missing without doubling the rest.
    try {
      return await Promise.all(
        p.topics.map((topic, i) => {
          this.options.betweenTopics?.(topic, i);
          return this.publishOne(session, topic, body, p.id === undefined ? undefined : `${p.id}|${topicToken(topic)}`);
        }),
      );
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** One retained publish per topic at a time from this node: they would only race each other. */
  private publishOne(session: Session, topic: string, body: string, msgId: string | undefined): Promise<Published> {
    const previous = this.chains.get(topic) ?? Promise.resolve();
    const run = previous.then(
      () => this.publishRetained(session, topic, body, msgId),
      () => this.publishRetained(session, topic, body, msgId),
    );
    this.chains.set(topic, run);
    void run.then(
      () => this.chains.get(topic) === run && this.chains.delete(topic),
      () => this.chains.get(topic) === run && this.chains.delete(topic),
    );
    return run;
  }

  private async publishRetained(session: Session, topic: string, body: string, msgId: string | undefined): Promise<Published> {
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
          const ack = await session.js.publish(subject, body, { headers: h, msgID: msgId, expect: { lastSubjectSequence: last?.seq ?? 0 } });
          if (ack.duplicate) {
            // Published before under this id: answer with where it landed then.
            const first = readHeaders((await session.jsm.streams.getMessage(this.stream, { seq: ack.seq })).header);
            if (!first) throw new Error(`message ${ack.seq} on ${subject} has no ${EPOCH}/${OFFSET} headers`);
            return { ...first, duplicate: true };
          }
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
    const nc = this.session?.nc;
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }
}

function readHeaders(h: MsgHdrs | undefined): { epoch: string; offset: number } | undefined {
  const epoch = h?.get(EPOCH);
  const offset = Number(h?.get(OFFSET));
  return epoch && offset > 0 ? { epoch, offset } : undefined;
}
