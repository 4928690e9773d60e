// The hub: named topics, each with a monotonically increasing offset, an epoch and a
// bounded history. Every transport (SSE, long-poll, Realtime WebSocket, dashboard)
// subscribes here, so a job's progress and a collaboration channel share one fan-out path.
//
// Encode once, write many: a message caches its serialization per wire format
// (`WireEncoder`), so a fan-out to N subscribers serializes once per format, not N times.
import { randomBytes } from 'node:crypto';

/** Serializes a message for one wire format. Identity of the encoder object is the cache key. */
export interface WireEncoder<T = Buffer | string> {
  readonly name: string;
  encode(message: HubMessage): T;
}

export interface Subscriber {
  /** Called synchronously for every message published to a topic the subscriber joined. Must not throw. */
  deliver(message: HubMessage): void;
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

class Topic {
  readonly epoch = randomBytes(6).toString('base64url');
  lastOffset = 0;
  readonly subscribers = new Set<Subscriber>();
  readonly history: History;
  lastActivity = Date.now();

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
}

export type PublishObserver = (message: HubMessage, subscriberCount: number) => void;

export class Hub {
  private readonly topics = new Map<string, Topic>();
  private readonly observers: PublishObserver[] = [];

  constructor(private readonly options: HubOptions) {}

  /** Publishes to a topic and delivers synchronously to its local subscribers. */
  publish(topicName: string, event: string, data: unknown, opts: PublishOptions = {}): HubMessage {
    const topic = this.topic(topicName);
    const retain = opts.retain ?? true;
    const msg = new HubMessage(topicName, topic.epoch, retain ? ++topic.lastOffset : 0, event, data, opts.ts ?? Date.now(), opts.origin);
    if (retain) topic.history.push(msg);
    topic.lastActivity = msg.ts;
    for (const sub of topic.subscribers) sub.deliver(msg);
    for (const observe of this.observers) observe(msg, topic.subscribers.size);
    return msg;
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
  }

  subscriberCount(topicName: string): number {
    return this.topics.get(topicName)?.subscribers.size ?? 0;
  }

  /** The topic's current position (creating the topic, and so its epoch, if it did not exist). */
  position(topicName: string): Position {
    const t = this.topic(topicName);
    return { epoch: t.epoch, offset: t.lastOffset };
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
      if (topic.subscribers.size === 0 && topic.history.size === 0 && topic.lastActivity < cutoff) this.topics.delete(name);
    }
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
