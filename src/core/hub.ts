// The hub: named topics, each with a monotonically increasing offset, an epoch and a
// bounded history. Every transport (SSE, long-poll, Realtime WebSocket, dashboard)
// subscribes here, so a job's progress and a collaboration channel share one fan-out path.
//
// Encode once, write many: a message caches its serialization per wire format
// (`WireEncoder`), so a fan-out to N subscribers serializes once per format, not N times.
//
// Two modes. Alone (no bus, `--bus memory`) the hub is the authority: it numbers offsets
// and publishes synchronously. In a cluster (`--bus redis|nats`, or a shared MemoryBus)
// the bus is the authority: a publish goes to the bus, which assigns the offset, and every
// node (the publisher's too) delivers the message when the bus hands it back, so all nodes
// see one order. For the topics a node serves with resume (`prepare`), the hub keeps a
// replica of the bus's epoch, offsets and history, loaded from the bus and then fed by the
// live feed; a gap in the live feed (a dropped bus connection) is filled from the bus's
// history before anything after it is delivered, so `since` stays exact on every node.
import { randomBytes } from 'node:crypto';
import { BusUnavailableError, type Bus, type BusEnvelope, type TopicSnapshot } from '../bus/types.js';

/** Serializes a message for one wire format. Identity of the encoder object is the cache key. */
export interface WireEncoder<T = Buffer | string> {
  readonly name: string;
  encode(message: HubMessage): T;
}

export interface Subscriber {
  /** Called synchronously for every message published to a topic the subscriber joined. Must not throw. */
  deliver(message: HubMessage): void;
  /**
   * Cluster mode only: the bus lost messages of `topic` that its history can no longer
   * replay (or the topic's epoch changed), so this subscriber's position is no longer
   * continuous. A resumable transport should end the stream so its client resumes (and is
   * told `reset`); without this method the subscriber just carries on.
   */
  interrupted?(topic: string): void;
}

/** A resumable position in one topic: the topic's epoch and the offset of the last message seen. */
export interface Position {
  epoch: string;
  offset: number;
}

export interface PublishOptions {
  /** Who sent it (a connection object, say), so a transport can skip echoing to the sender. */
  origin?: unknown;
  /** Keep it in history for resume (default true). Presence diffs and acks are not retained. */
  retain?: boolean;
  /** Publish time in ms since the epoch; defaults to now. */
  ts?: number;
}

export class HubMessage {
  private encodings: Map<WireEncoder<unknown>, unknown> | undefined;

  constructor(
    readonly topic: string,
    readonly epoch: string,
    /** Per-topic sequence number, 1-based; 0 for messages that are not retained. */
    readonly offset: number,
    readonly event: string,
    readonly data: unknown,
    /** Server publish time, ms since the Unix epoch. */
    readonly ts: number,
    readonly origin: unknown,
  ) {}

  /** The message in the encoder's wire format, computed on first use and then shared. */
  encode<T>(encoder: WireEncoder<T>): T {
    if (!this.encodings) this.encodings = new Map();
    const enc = encoder as WireEncoder<unknown>;
    let bytes = this.encodings.get(enc) as T | undefined;
    if (bytes === undefined) {
      bytes = encoder.encode(this);
      this.encodings.set(enc, bytes);
    }
    return bytes;
  }
}

/** Fixed-capacity FIFO of the most recent messages of one topic. */
class History {
  private items: (HubMessage | undefined)[];
  private head = 0; // index of the oldest item
  private count = 0;

  constructor(private readonly capacity: number) {
    this.items = new Array<HubMessage | undefined>(Math.min(capacity, 16));
  }

  get size(): number {
    return this.count;
  }

  push(msg: HubMessage): void {
    if (this.capacity === 0) return;
    if (this.count === this.items.length && this.count < this.capacity) this.grow();
    if (this.count === this.capacity) {
      this.items[this.head] = msg;
      this.head = (this.head + 1) % this.items.length;
      return;
    }
    this.items[(this.head + this.count) % this.items.length] = msg;
    this.count++;
  }

  oldest(): HubMessage | undefined {
    return this.count ? this.items[this.head] : undefined;
  }

  clear(): void {
    this.items = new Array<HubMessage | undefined>(Math.min(this.capacity, 16));
    this.head = 0;
    this.count = 0;
  }

  /** Drops messages published before `cutoffTs`. */
  trimOlderThan(cutoffTs: number): void {
    while (this.count && this.items[this.head]!.ts < cutoffTs) {
      this.items[this.head] = undefined;
      this.head = (this.head + 1) % this.items.length;
      this.count--;
    }
  }

  /** Messages with offset greater than `offset`, oldest first. */
  after(offset: number, limit = Infinity): HubMessage[] {
    const out: HubMessage[] = [];
    const first = this.oldest();
    if (!first) return out;
    // Offsets in history are contiguous, so the start index is computed, not searched.
    const skip = Math.max(0, offset - first.offset + 1);
    for (let i = skip; i < this.count && out.length < limit; i++) out.push(this.items[(this.head + i) % this.items.length]!);
    return out;
  }

  private grow(): void {
    const next = new Array<HubMessage | undefined>(Math.min(this.capacity, this.items.length * 2));
    for (let i = 0; i < this.count; i++) next[i] = this.items[(this.head + i) % this.items.length];
    this.items = next;
    this.head = 0;
  }
}

/** A new epoch: 8 random base64url characters. */
export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/**
 * Cluster mode only. `plain`: delivered as the bus hands messages over, no replica (Realtime
 * channels need no positions). `loading`: the replica is being (re)loaded from the bus and
 * live messages wait in `pending`. `live`: the replica matches the bus up to `lastOffset`.
 */
type SyncState = 'plain' | 'loading' | 'live';

class Topic {
  epoch = newEpoch();
  lastOffset = 0;
  readonly subscribers = new Set<Subscriber>();
  readonly history: History;
  lastActivity = Date.now();
  sync: SyncState = 'plain';
  /** A position in this topic (so its epoch) was handed out: keep the topic for resume until the sweep. */
  positioned = false;
  loading: Promise<void> | undefined;
  pending: { envelope: BusEnvelope; origin: unknown }[] | undefined;

  constructor(
    readonly name: string,
    historySize: number,
  ) {
    this.history = new History(historySize);
  }
}

export type ResumeResult =
  | { kind: 'ok'; messages: HubMessage[] }
  /** History no longer covers the gap (or the topic was recreated): the client must refetch state. */
  | { kind: 'reset'; reason: 'epoch' | 'expired' | 'ahead'; position: Position };

export interface HubOptions {
  historySize: number;
  historyTtlMs: number;
  /** The cluster bus; absent, the hub runs alone (the memory bus of one process). */
  bus?: Bus;
  /** Told about replica gaps and failed loads (cluster mode). */
  onProblem?: (problem: 'gap' | 'load_failed' | 'epoch_changed', topic: string, detail: unknown) => void;
}

export type PublishObserver = (message: HubMessage, subscriberCount: number) => void;

/** How long a publish's origin is remembered while its message travels through the bus. */
const ORIGIN_TTL_MS = 60_000;

/** How long a cluster replica with no subscribers is kept before the node stops serving it. */
const REPLICA_IDLE_MS = 60_000;

export class Hub {
  private readonly topics = new Map<string, Topic>();
  private readonly observers: PublishObserver[] = [];
  private readonly bus: Bus | undefined;
  /** Cluster mode: origins of this node's publishes in flight, by publish ref. */
  private readonly origins = new Map<number, { origin: unknown; at: number }>();
  private refSeq = 0;

  constructor(private readonly options: HubOptions) {
    this.bus = options.bus;
  }

  /** True when a bus shared with other nodes is the authority for offsets. */
  get clustered(): boolean {
    return this.bus !== undefined;
  }

  /**
   * Publishes to a topic of a hub that runs alone: the message is numbered and delivered to
   * the local subscribers before this returns. In a cluster use `send`.
   */
  publish(topicName: string, event: string, data: unknown, opts: PublishOptions = {}): HubMessage {
    if (this.bus) throw new Error(`hub.publish(${topicName}) on a clustered hub: use hub.send(), which goes through the bus`);
    const topic = this.topic(topicName);
    const retain = opts.retain ?? true;
    const msg = new HubMessage(topicName, topic.epoch, retain ? ++topic.lastOffset : 0, event, data, opts.ts ?? Date.now(), opts.origin);
    if (retain) topic.history.push(msg);
    topic.lastActivity = msg.ts;
    this.fanout(topic, msg);
    this.dropIfUnused(topic);
    return msg;
  }

  /**
   * Publishes in either mode. Alone it is `publish` (delivered before this returns). In a
   * cluster the message is handed to the bus, which numbers it, and every node (this one
   * too) delivers it when the bus hands it back. Rejects with `BusUnavailableError` when
   * the bus cannot take it: the caller reports that (HTTP 503), the message is not lost silently.
   * Alone, what `publish` throws is thrown here too, synchronously (the Realtime channel turns
   * that into `phx_error` at once).
   */
  send(topicName: string, event: string, data: unknown, opts: PublishOptions = {}): Promise<HubMessage> {
    if (this.bus) return this.publishToBus(this.bus, topicName, event, data, opts);
    return Promise.resolve(this.publish(topicName, event, data, opts));
  }

  private async publishToBus(bus: Bus, topicName: string, event: string, data: unknown, opts: PublishOptions): Promise<HubMessage> {
    const ref = ++this.refSeq;
    const ts = opts.ts ?? Date.now();
    if (opts.origin !== undefined) this.origins.set(ref, { origin: opts.origin, at: ts });
    try {
      const { epoch, offset } = await bus.publish({ topic: topicName, event, data, ts, node: bus.nodeId, ref }, opts.retain ?? true);
      return new HubMessage(topicName, epoch, offset, event, data, ts, opts.origin);
    } catch (err) {
      // The bus reports its own failures as BusUnavailableError; anything else (a payload that
      // cannot be serialized, say) is the caller's problem and keeps its own type.
      this.origins.delete(ref);
      throw err;
    }
  }

  private fanout(topic: Topic, msg: HubMessage): void {
    for (const sub of topic.subscribers) sub.deliver(msg);
    for (const observe of this.observers) observe(msg, topic.subscribers.size);
  }

  /**
   * Cluster mode: makes this node's replica of each topic current (loading it from the bus
   * the first time), so `position` and `since` answer for the whole cluster. Resolves at
   * once when alone (returns undefined). Rejects with `BusUnavailableError` while the bus
   * is down: the node cannot prove what the cluster holds, so it must not answer a resume.
   */
  prepare(topicNames: readonly string[]): Promise<void> | undefined {
    const bus = this.bus;
    if (!bus) return undefined;
    if (!bus.connected) return Promise.reject(new BusUnavailableError(bus.kind, bus.detail));
    const waits: Promise<void>[] = [];
    for (const name of topicNames) {
      const topic = this.topic(name);
      topic.lastActivity = Date.now();
      if (topic.sync === 'live') continue;
      waits.push(topic.sync === 'loading' ? topic.loading! : this.load(bus, topic, true));
    }
    return waits.length ? Promise.all(waits).then(() => undefined) : Promise.resolve();
  }

  /**
   * A live message from the bus (cluster mode). Messages of topics this node does not
   * serve are dropped; a replica applies retained messages strictly in offset order.
   */
  receive(envelope: BusEnvelope): void {
    let origin: unknown;
    if (this.origins.size && envelope.node === this.bus?.nodeId) {
      origin = this.origins.get(envelope.ref)?.origin;
      this.origins.delete(envelope.ref);
    }
    const topic = this.topics.get(envelope.topic);
    if (!topic) return;
    if (envelope.offset === 0 || topic.sync === 'plain') return this.fanout(topic, messageOf(envelope, origin));
    if (topic.sync === 'loading') {
      topic.pending!.push({ envelope, origin });
      return;
    }
    this.apply(topic, envelope, origin);
  }

  /** The live feed was interrupted: re-check every replica against the bus. */
  resync(): void {
    const bus = this.bus;
    if (!bus) return;
    for (const topic of this.topics.values()) {
      if (topic.sync === 'live') void this.load(bus, topic, false).catch(() => undefined);
    }
  }

  /** Applies one retained message to a live replica: the next offset is delivered, a repeat dropped, a gap filled first. */
  private apply(topic: Topic, envelope: BusEnvelope, origin: unknown): void {
    if (envelope.epoch === topic.epoch && envelope.offset <= topic.lastOffset) return;
    if (envelope.epoch === topic.epoch && envelope.offset === topic.lastOffset + 1) {
      const msg = messageOf(envelope, origin);
      topic.lastOffset = msg.offset;
      topic.history.push(msg);
      this.fanout(topic, msg);
      return;
    }
    // A gap (or a new epoch): hold this message and fill in from the bus's history first.
    const bus = this.bus!;
    const loading = this.load(bus, topic, false);
    topic.pending!.push({ envelope, origin });
    void loading.catch(() => undefined);
  }

  /**
   * (Re)loads a replica from the bus: `first` loads it from scratch; otherwise it fetches what
   * came after the replica's last offset. Live messages arriving meanwhile wait in `pending`
   * and are applied after, in order, without duplicates.
   */
  private load(bus: Bus, topic: Topic, first: boolean): Promise<void> {
    topic.sync = 'loading';
    topic.pending = [];
    const after = first ? 0 : topic.lastOffset;
    const loading = bus.load(topic.name, after).then(
      (snapshot) => this.loaded(topic, snapshot, first),
      (err: unknown) => {
        this.options.onProblem?.('load_failed', topic.name, err);
        this.abandon(topic);
        throw err instanceof BusUnavailableError ? err : new BusUnavailableError(bus.kind, (err as Error).message, { cause: err });
      },
    );
    topic.loading = loading;
    return loading;
  }

  private loaded(topic: Topic, snapshot: TopicSnapshot, first: boolean): void {
    if (topic.sync !== 'loading') return;
    let interrupted = false;
    let replay: BusEnvelope[] = [];
    if (first || snapshot.epoch !== topic.epoch) {
      // A new replica (or the topic was recreated on the bus): its history becomes the bus's, delivered to nobody.
      if (!first) {
        interrupted = true;
        this.options.onProblem?.('epoch_changed', topic.name, { from: topic.epoch, to: snapshot.epoch });
      }
      topic.epoch = snapshot.epoch;
      topic.history.clear();
      for (const m of snapshot.messages) topic.history.push(messageOf(m, undefined));
      topic.lastOffset = snapshot.offset;
    } else {
      replay = snapshot.messages.filter((m) => m.offset > topic.lastOffset);
      const next = replay[0]?.offset ?? snapshot.offset + 1;
      if (next !== topic.lastOffset + 1) {
        // The bus's history no longer covers the gap: the positions before it cannot be replayed.
        interrupted = true;
        this.options.onProblem?.('gap', topic.name, { from: topic.lastOffset, to: next });
        topic.history.clear();
        topic.lastOffset = next - 1;
      }
    }
    if (interrupted) for (const sub of [...topic.subscribers]) sub.interrupted?.(topic.name);
    const pending = topic.pending ?? [];
    topic.pending = undefined;
    topic.loading = undefined;
    topic.sync = 'live';
    // Replayed messages reach live subscribers too: they were published while the feed was away.
    for (const m of replay) this.apply(topic, m, undefined);
    pending.sort((a, b) => a.envelope.offset - b.envelope.offset);
    for (let i = 0; i < pending.length; i++) {
      const { envelope, origin } = pending[i]!;
      if (isLoading(topic)) {
        // Another gap: the rest waits for that load.
        topic.pending!.push(...pending.slice(i));
        return;
      }
      this.apply(topic, envelope, origin);
    }
  }

  /** A replica that could not be loaded goes back to `plain`; its subscribers are told their position broke. */
  private abandon(topic: Topic): void {
    const pending = topic.pending ?? [];
    topic.sync = 'plain';
    topic.loading = undefined;
    topic.pending = undefined;
    topic.history.clear();
    topic.lastOffset = 0;
    for (const sub of [...topic.subscribers]) sub.interrupted?.(topic.name);
    for (const { envelope, origin } of pending) this.fanout(topic, messageOf(envelope, origin));
  }

  subscribe(topicName: string, subscriber: Subscriber): void {
    const topic = this.topic(topicName);
    topic.subscribers.add(subscriber);
    topic.lastActivity = Date.now();
  }

  unsubscribe(topicName: string, subscriber: Subscriber): void {
    const topic = this.topics.get(topicName);
    if (!topic) return;
    topic.subscribers.delete(subscriber);
    topic.lastActivity = Date.now();
    this.dropIfUnused(topic);
  }

  /**
   * Forgets a topic at once when nobody holds anything of it: no subscriber, nothing ever
   * retained, no position handed out (Realtime channels). Its name and state are freed now,
   * not after --history-ttl-ms, so a flood of joins to throw-away topics leaves nothing behind.
   */
  private dropIfUnused(topic: Topic): void {
    if (topic.subscribers.size === 0 && topic.lastOffset === 0 && !topic.positioned && topic.sync === 'plain') this.topics.delete(topic.name);
  }

  subscriberCount(topicName: string): number {
    return this.topics.get(topicName)?.subscribers.size ?? 0;
  }

  /** The topic's current position (creating the topic, and so its epoch, if it did not exist). In a cluster, `prepare` it first. */
  position(topicName: string): Position {
    const t = this.topic(topicName);
    this.assertPrepared(t);
    t.positioned = true;
    return { epoch: t.epoch, offset: t.lastOffset };
  }

  private assertPrepared(t: Topic): void {
    if (this.bus && t.sync !== 'live') throw new Error(`hub topic ${t.name} was read before prepare() made its replica current`);
  }

  /** True if the topic currently exists (has subscribers or retained history). */
  has(topicName: string): boolean {
    return this.topics.has(topicName);
  }

  /**
   * What a client at `from` missed: exactly the messages after it, in order, or a
   * `reset` when the history cannot prove nothing was lost. Never a silent skip.
   */
  since(topicName: string, from: Position, limit = Infinity): ResumeResult {
    const topic = this.topic(topicName);
    this.assertPrepared(topic);
    topic.positioned = true;
    const position = { epoch: topic.epoch, offset: topic.lastOffset };
    if (from.epoch !== topic.epoch) return { kind: 'reset', reason: 'epoch', position };
    if (from.offset > topic.lastOffset) return { kind: 'reset', reason: 'ahead', position };
    if (from.offset === topic.lastOffset) return { kind: 'ok', messages: [] };
    topic.history.trimOlderThan(Date.now() - this.options.historyTtlMs);
    const oldest = topic.history.oldest();
    if (!oldest || oldest.offset > from.offset + 1) return { kind: 'reset', reason: 'expired', position };
    return { kind: 'ok', messages: topic.history.after(from.offset, limit) };
  }

  /** Registers a callback run after every publish (metrics, dashboards). */
  observe(observer: PublishObserver): void {
    this.observers.push(observer);
  }

  get topicCount(): number {
    return this.topics.size;
  }

  /** Topic names with their subscriber counts, busiest first. */
  busiest(limit: number): { topic: string; subscribers: number; offset: number }[] {
    return [...this.topics.values()]
      .map((t) => ({ topic: t.name, subscribers: t.subscribers.size, offset: t.lastOffset }))
      .sort((a, b) => b.subscribers - a.subscribers || b.offset - a.offset)
      .slice(0, limit);
  }

  /**
   * Periodic housekeeping from the server's shared sweep: trims expired history and
   * forgets topics with no subscribers and nothing left to resume.
   */
  sweep(now = Date.now()): void {
    const cutoff = now - this.options.historyTtlMs;
    for (const [name, topic] of this.topics) {
      topic.history.trimOlderThan(cutoff);
      if (topic.subscribers.size || topic.sync === 'loading') continue;
      // A cluster replica is a copy of what the bus keeps: drop it soon after its last reader left.
      if (this.bus ? topic.lastActivity < now - Math.min(REPLICA_IDLE_MS, this.options.historyTtlMs) : topic.history.size === 0 && topic.lastActivity < cutoff) {
        this.topics.delete(name);
      }
    }
    for (const [ref, { at }] of this.origins) if (at < now - ORIGIN_TTL_MS) this.origins.delete(ref);
  }

  private topic(name: string): Topic {
    let t = this.topics.get(name);
    if (!t) {
      t = new Topic(name, this.options.historySize);
      this.topics.set(name, t);
    }
    return t;
  }
}

function messageOf(e: BusEnvelope, origin: unknown): HubMessage {
  return new HubMessage(e.topic, e.epoch, e.offset, e.event, e.data, e.ts, origin);
}

/** A function, so TypeScript does not narrow `sync` across the calls that change it. */
function isLoading(topic: Topic): boolean {
  return topic.sync === 'loading';
}
