// The hub: named topics, each with a monotonically increasing offset, an epoch and a
// bounded history. Every transport (SSE, long-poll, Realtime WebSocket, dashboard)
// subscribes here, so a job's progress and a collaboration channel share one fan-out path.
//
// Encode once, write many: a message caches its serialization per wire format
// (`WireEncoder`), so a fan-out to N subscribers serializes once per format, not N times.
//
// One publish path. The hub always publishes through a bus, which is the authority for
// offsets: the in-process engine when the gateway runs alone (`--bus memory`), Redis or
// NATS in a cluster. Callers never know which.
//
// Interest routing: the hub subscribes its node to a topic on the bus while the topic has
// local subscribers (and for a short linger after the last leaves, so a reconnecting
// client causes no churn), so a node receives only what its own clients need.
//
// Delivery. A message that is not retained (broadcasts, presence diffs) reaches the
// local subscribers at once, before the bus round trip, and the node drops its own echo
// when it comes back. A retained message is delivered in the bus's order: on the
// publishing node as soon as the bus has numbered it (when it is the next offset there),
// on every other node when the bus hands it over; a repeat is dropped by offset. For the
// topics a node serves with resume (`prepare`), the hub keeps a replica of the bus's
// epoch, offsets and history, loaded from the bus and then fed by the live feed; a gap in
// the live feed (a dropped bus connection) is filled from the bus's history before
// anything after it is delivered, so `since` stays exact on every node.
//
// It stays one file: publish, receive, a topic's replica states (plain, loading, live)
// and interest routing are one state machine per topic, and the ordering rules above hold
// only read together. A topic's bounded history is history.ts.
import { randomBytes } from 'node:crypto';
import { BusUnavailableError, type Bus, type BusEnvelope, type Published, type TopicSnapshot } from '../bus/types.js';
import { History } from './history.js';

/** Serializes a message for one wire format. Identity of the encoder object is the cache key. */
export interface WireEncoder<T = Buffer | string> {
  readonly name: string;
  encode(message: HubMessage): T;
}

export interface Subscriber {
  /** Called synchronously for every message published to a topic the subscriber joined. Must not throw. */
  deliver(message: HubMessage): void;
  /**
   * The bus lost messages of `topic` that its history can no longer replay (or the
   * topic's epoch changed), so this subscriber's position is no longer continuous. A
   * resumable transport should end the stream so its client resumes (and is told
   * `reset`); without this method the subscriber just carries on.
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
  /**
   * Idempotency id: a retry with the same id (within the bus's dedupe window) publishes
   * nothing twice, in any of the topics, and resolves with the first publish's positions.
   */
  id?: string;
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

/** A new epoch: 8 random base64url characters. */
export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/**
 * `plain`: delivered as the bus hands messages over, no replica (Realtime channels need
 * no positions). `loading`: the replica is being (re)loaded from the bus and live
 * messages wait in `pending`. `live`: the replica matches the bus up to `lastOffset`.
 */
type SyncState = 'plain' | 'loading' | 'live';

class Topic {
  epoch = '';
  lastOffset = 0;
  readonly subscribers = new Set<Subscriber>();
  readonly history: History;
  lastActivity = Date.now();
  sync: SyncState = 'plain';
  loading: Promise<void> | undefined;
  pending: { envelope: BusEnvelope; origin: unknown }[] | undefined;
  /** The node's bus subscription to this topic: made (or being made) while set. */
  listening: Promise<void> | undefined;

  constructor(
    readonly name: string,
    historySize: number,
  ) {
    this.history = new History(historySize);
  }
}

export type ResumeResult =
  | { kind: 'ok'; messages: HubMessage[] }
  /**
   * History no longer covers the gap (or the topic was recreated): the client must refetch
   * state. `position` is where the stream continues: after a new epoch, its start when the
   * new epoch's history is complete (so what was published since is still replayed), else now.
   */
  | { kind: 'reset'; reason: 'epoch' | 'expired' | 'ahead'; position: Position };

export interface HubOptions {
  historySize: number;
  historyTtlMs: number;
  /** The bus every publish goes through (the in-process engine when the gateway runs alone). */
  bus: Bus;
  /** How long a topic with no local subscribers keeps its bus subscription and replica (default 5 s). */
  lingerMs?: number;
  /** Told about replica gaps and failed loads. */
  onProblem?: (problem: 'gap' | 'load_failed' | 'epoch_changed', topic: string, detail: unknown) => void;
}

export type PublishObserver = (message: HubMessage, subscriberCount: number) => void;

/** How long a publish's origin is remembered while its message travels through the bus. */
const ORIGIN_TTL_MS = 60_000;

export const DEFAULT_LINGER_MS = 5_000;

export class Hub {
  private readonly topics = new Map<string, Topic>();
  private readonly observers: PublishObserver[] = [];
  private readonly bus: Bus;
  private readonly lingerMs: number;
  /** Origins of this node's retained publishes in flight, by publish ref (for an echo that delivers it here). */
  private readonly origins = new Map<number, { origin: unknown; at: number }>();
  /** Topics forgotten here whose bus subscription lingers, with when their last subscriber left. */
  private readonly lingering = new Map<string, number>();
  private refSeq = 0;
  /** Own messages that came back from the bus and were dropped (they had been delivered here first). */
  echoesDropped = 0;

  constructor(private readonly options: HubOptions) {
    this.bus = options.bus;
    this.lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
  }

  /**
   * Publishes a message to one topic, or to several as one bus operation (a progress event
   * goes to its content topic and its owner's topic together), and resolves with the
   * message as numbered in the first topic. Rejects with `BusUnavailableError` when the bus
   * cannot take it: the caller reports that (HTTP 503), the message is not lost silently.
   *
   * A message that is not retained reaches this node's subscribers before this returns,
   * whatever the bus does; a retained one reaches them once the bus has numbered it.
   */
  async publish(target: string | readonly string[], event: string, data: unknown, opts: PublishOptions = {}): Promise<HubMessage> {
    const topics = typeof target === 'string' ? [target] : target;
    if (topics.length === 0) throw new Error(`hub.publish(${event}) names no topic`);
    const retain = opts.retain ?? true;
    const ts = opts.ts ?? Date.now();
    const bus = this.bus;
    const ref = ++this.refSeq;
    if (!retain) {
      const messages = topics.map((name) => new HubMessage(name, '', 0, event, data, ts, opts.origin));
      if (opts.id === undefined) {
        // Local first: this node's members get it now; the bus carries it to the other nodes.
        for (const msg of messages) this.fanout(this.topics.get(msg.topic), msg);
        await bus.publish({ topics, event, data, ts, node: bus.nodeId, ref, retain, id: opts.id });
      } else {
        // A retry must not reach anyone twice: the bus says first whether the id is new.
        const positions = await bus.publish({ topics, event, data, ts, node: bus.nodeId, ref, retain, id: opts.id });
        messages.forEach((msg, i) => positions[i]!.duplicate || this.fanout(this.topics.get(msg.topic), msg));
      }
      return messages[0]!;
    }
    if (opts.origin !== undefined) this.origins.set(ref, { origin: opts.origin, at: ts });
    let positions: Published[];
    try {
      positions = await bus.publish({ topics, event, data, ts, node: bus.nodeId, ref, retain, id: opts.id });
    } catch (err) {
      // The bus reports its own failures as BusUnavailableError; anything else (a payload that
      // cannot be serialized, say) is the caller's problem and keeps its own type.
      this.origins.delete(ref);
      throw err;
    }
    let first: HubMessage | undefined;
    for (let i = 0; i < topics.length; i++) {
      const name = topics[i]!;
      const { epoch, offset, duplicate } = positions[i]!;
      const topic = this.topics.get(name);
      let msg: HubMessage | undefined;
      if (duplicate) {
        // A retry of a publication the bus already applied: delivered back then, not again.
      } else if (topic === undefined || topic.sync === 'plain') {
        // No replica to keep in order: delivered here now (to nobody, but counted), and the echo dropped.
        msg = new HubMessage(name, epoch, offset, event, data, ts, opts.origin);
        this.fanout(topic, msg);
      } else if (topic?.sync === 'live' && topic.epoch === epoch && offset === topic.lastOffset + 1) {
        // The next offset of a live replica: delivered here now. Otherwise the live feed
        // brings it in order (after whatever another node published just before it).
        msg = new HubMessage(name, epoch, offset, event, data, ts, opts.origin);
        this.append(topic, msg);
      }
      first ??= msg ?? new HubMessage(name, epoch, offset, event, data, ts, opts.origin);
    }
    return first!;
  }

  /** Delivers to the topic's subscribers (none when this node does not serve it), then tells the observers. */
  private fanout(topic: Topic | undefined, msg: HubMessage): void {
    if (topic) for (const sub of topic.subscribers) sub.deliver(msg);
    for (const observe of this.observers) observe(msg, topic ? topic.subscribers.size : 0);
  }

  /** Adds the next retained message to a live replica and delivers it. */
  private append(topic: Topic, msg: HubMessage): void {
    topic.lastOffset = msg.offset;
    topic.history.push(msg);
    this.fanout(topic, msg);
  }

  /**
   * Makes this node's replica of each topic current (subscribing to it on the bus and
   * loading it the first time), so `position` and `since` answer for the whole cluster.
   * Rejects with `BusUnavailableError` while the bus is down: the node cannot prove what
   * the cluster holds, so it must not answer a resume.
   */
  prepare(topicNames: readonly string[]): Promise<void> {
    const bus = this.bus;
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
   * A live message from the bus. Messages of topics this node does not serve are dropped,
   * and so is this node's own echo of a message it delivered first; a replica applies
   * retained messages strictly in offset order.
   */
  receive(envelope: BusEnvelope): void {
    const own = envelope.node === this.bus.nodeId;
    const topic = this.topics.get(envelope.topic);
    if (own && (envelope.offset === 0 || topic?.sync === 'plain')) {
      this.echoesDropped++;
      return;
    }
    let origin: unknown;
    if (own && this.origins.size) {
      origin = this.origins.get(envelope.ref)?.origin;
      this.origins.delete(envelope.ref);
    }
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
    for (const topic of this.topics.values()) {
      if (topic.sync === 'live') void this.load(this.bus, topic, false).catch(() => undefined);
    }
  }

  /** Applies one retained message to a live replica: the next offset is delivered, a repeat dropped, a gap filled first. */
  private apply(topic: Topic, envelope: BusEnvelope, origin: unknown): void {
    if (envelope.epoch === topic.epoch && envelope.offset <= topic.lastOffset) return;
    if (envelope.epoch === topic.epoch && envelope.offset === topic.lastOffset + 1) {
      this.append(topic, messageOf(envelope, origin));
      return;
    }
    // A gap (or a new epoch): hold this message and fill in from the bus's history first.
    const loading = this.load(this.bus, topic, false);
    topic.pending!.push({ envelope, origin });
    void loading.catch(() => undefined);
  }

  /** Subscribes this node to the topic on the bus, once; resolves when the subscription is in place. */
  private listen(topic: Topic): Promise<void> {
    topic.listening ??= this.bus.subscribe(topic.name).catch((err: unknown) => {
      // Asked again at the next prepare or subscribe (the bus also restores it when it reconnects).
      topic.listening = undefined;
      throw err;
    });
    return topic.listening;
  }

  /**
   * (Re)loads a replica from the bus: `first` subscribes and loads it from scratch;
   * otherwise it fetches what came after the replica's last offset. Live messages arriving
   * meanwhile wait in `pending` and are applied after, in order, without duplicates.
   */
  private load(bus: Bus, topic: Topic, first: boolean): Promise<void> {
    topic.sync = 'loading';
    topic.pending = [];
    const after = first ? 0 : topic.lastOffset;
    // Subscribed before the load, so nothing published after the snapshot is missed.
    const loading = (first ? this.listen(topic) : Promise.resolve())
      .then(() => bus.load(topic.name, after))
      // The topic has a new epoch (the bus lost its state): its whole history is needed, not what follows our old offset.
      .then((snapshot) => (after > 0 && snapshot.epoch !== topic.epoch ? bus.load(topic.name, 0) : snapshot))
      .then(
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

  /**
   * Subscribes this node to a topic on the bus (if it was not) and resolves once messages
   * published on other nodes reach it, so a client told "joined" after this misses
   * nothing. Rejects with `BusUnavailableError` while the bus is down. A topic followed
   * with no subscriber is forgotten after the linger.
   */
  follow(topicName: string): Promise<void> {
    const topic = this.topic(topicName);
    topic.lastActivity = Date.now();
    return this.listen(topic);
  }

  /**
   * Adds a subscriber to a topic. Local publishes reach it from now on; so do those of
   * other nodes once the node's bus subscription is in place (`follow` or `prepare` first
   * to wait for that). While the bus is down the bus makes the subscription when it is back.
   */
  subscribe(topicName: string, subscriber: Subscriber): void {
    const topic = this.topic(topicName);
    topic.subscribers.add(subscriber);
    topic.lastActivity = Date.now();
    if (!topic.listening) this.listen(topic).catch(() => undefined);
  }

  unsubscribe(topicName: string, subscriber: Subscriber): void {
    const topic = this.topics.get(topicName);
    if (!topic) return;
    topic.subscribers.delete(subscriber);
    topic.lastActivity = Date.now();
    this.dropIfUnused(topic);
  }

  /**
   * Forgets a plain topic (a Realtime channel: no replica, no positions) at once when its
   * last subscriber leaves, so a flood of joins to throw-away topics leaves nothing behind.
   * Only its name lingers, in `lingering`, while the node stays subscribed on the bus for
   * the linger. A replica is kept for the linger instead (see `sweep`): a client that
   * reconnects resumes from it without reloading it from the bus.
   */
  private dropIfUnused(topic: Topic): void {
    if (topic.subscribers.size !== 0 || topic.sync !== 'plain') return;
    this.topics.delete(topic.name);
    if (topic.listening) this.lingering.set(topic.name, Date.now());
  }

  subscriberCount(topicName: string): number {
    return this.topics.get(topicName)?.subscribers.size ?? 0;
  }

  /** The topic's current position; `prepare` it first. */
  position(topicName: string): Position {
    const t = this.topic(topicName);
    this.assertPrepared(t);
    return { epoch: t.epoch, offset: t.lastOffset };
  }

  private assertPrepared(t: Topic): void {
    if (t.sync !== 'live') throw new Error(`hub topic ${t.name} was read before prepare() made its replica current`);
  }

  /** True if this node currently serves the topic (it has subscribers, a replica, or lingers). */
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
    topic.history.trimOlderThan(Date.now() - this.options.historyTtlMs);
    const position = { epoch: topic.epoch, offset: topic.lastOffset };
    const oldest = topic.history.oldest();
    if (from.epoch !== topic.epoch) {
      // The client's epoch is gone (the topic was recreated, say after the bus restarted
      // empty). What was published in the new epoch is still replayable when its history
      // is complete: continue from its start, so only what is truly gone is skipped.
      const complete = topic.lastOffset === 0 || oldest?.offset === 1;
      return { kind: 'reset', reason: 'epoch', position: complete ? { epoch: topic.epoch, offset: 0 } : position };
    }
    if (from.offset > topic.lastOffset) return { kind: 'reset', reason: 'ahead', position };
    if (from.offset === topic.lastOffset) return { kind: 'ok', messages: [] };
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
   * Periodic housekeeping from the server's shared sweep: trims expired history, and
   * forgets topics that have had no subscriber for the linger (unsubscribing the node
   * from them on the bus, which keeps their history for later resumes).
   */
  sweep(now = Date.now()): void {
    const cutoff = now - this.options.historyTtlMs;
    const idle = now - this.lingerMs;
    for (const [name, topic] of this.topics) {
      topic.history.trimOlderThan(cutoff);
      if (topic.subscribers.size || topic.sync === 'loading' || topic.lastActivity > idle) continue;
      this.topics.delete(name);
      if (topic.listening) this.bus.unsubscribe(name);
    }
    for (const [name, since] of this.lingering) {
      if (since > idle) continue;
      this.lingering.delete(name);
      this.bus.unsubscribe(name);
    }
    for (const [ref, { at }] of this.origins) if (at < now - ORIGIN_TTL_MS) this.origins.delete(ref);
  }

  private topic(name: string): Topic {
    let t = this.topics.get(name);
    if (!t) {
      t = new Topic(name, this.options.historySize);
      this.topics.set(name, t);
      // Back within the linger: the node never left the topic on the bus.
      if (this.lingering.delete(name)) t.listening = Promise.resolve();
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
