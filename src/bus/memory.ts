// The memory bus: the bus engine in one process. A `MemoryCluster` plays the part of the
// Redis or NATS server (it numbers offsets, keeps history, presence and records, routes each
// message to the nodes subscribed to its topic); each gateway connects a `MemoryBus` node
// to it. A gateway that runs alone (`--bus memory`, the default) has a cluster of its own,
// so its hub publishes through exactly the same path as a clustered one. Several gateways
// in one process (tests, demos) share one cluster, and a node can be cut off from it
// (`setConnected`) to test the hub's replica logic.
import { randomBytes } from 'node:crypto';
import { Hub, newEpoch, type HubOptions } from '../core/hub.js';
import {
  BusUnavailableError,
  type Bus,
  type BusEnvelope,
  type BusHandlers,
  type PresenceEntry,
  type PresenceStore,
  type Publication,
  type Published,
  type RecordStore,
  type TopicSnapshot,
} from './types.js';

interface EngineTopic {
  epoch: string;
  offset: number;
  history: BusEnvelope[];
}

export interface MemoryClusterOptions {
  /** The engine of one gateway that runs alone (`--bus memory`): no other node will ever connect. */
  private?: boolean;
  /** How long a retained message stays in history (default: kept until pushed out by `historySize`). */
  historyTtlMs?: number;
  /** How long a publication id is remembered for deduplication (default 1 hour). */
  dedupeTtlMs?: number;
}

/** How often the engine trims expired history and forgets idle topics, at most (it runs from publishes and loads). */
const SWEEP_EVERY_MS = 1000;

export class MemoryCluster {
  private readonly topics = new Map<string, EngineTopic>();
  /** topic → the nodes subscribed to it */
  private readonly interest = new Map<string, Set<MemoryBus>>();
  /** `${topic}\0${publication id}` → where that publication landed, and until when it is remembered */
  private readonly seen = new Map<string, { at: Published; expires: number }>();
  /** topic → ref → entry */
  readonly presence = new Map<string, Map<string, PresenceEntry>>();
  /** node → last heartbeat (ms) */
  readonly heartbeats = new Map<string, number>();
  readonly cleaned = new Set<string>();
  readonly records = new Map<string, { value: string; expires: number }>();
  private readonly historyTtlMs: number;
  private readonly dedupeTtlMs: number;
  /** See MemoryClusterOptions.private. */
  readonly private: boolean;
  private lastSweep = Date.now();

  constructor(
    readonly historySize: number,
    options: MemoryClusterOptions = {},
  ) {
    this.historyTtlMs = options.historyTtlMs ?? Infinity;
    this.private = options.private ?? false;
    this.dedupeTtlMs = options.dedupeTtlMs ?? 3600_000;
  }

  connect(nodeId?: string, nodeTimeoutMs = 15_000): MemoryBus {
    return new MemoryBus(this, nodeId ?? randomBytes(6).toString('hex'), nodeTimeoutMs);
  }

  /** @internal A node's subscriptions take effect (on start, and again on reconnect). */
  attach(node: MemoryBus): void {
    for (const topic of node.topics) this.listen(topic, node);
  }

  /** @internal A node left or was cut off: it receives nothing until it attaches again. */
  detach(node: MemoryBus): void {
    for (const topic of node.topics) this.ignore(topic, node);
  }

  /** @internal */
  listen(topic: string, node: MemoryBus): void {
    let nodes = this.interest.get(topic);
    if (!nodes) this.interest.set(topic, (nodes = new Set()));
    nodes.add(node);
  }

  /** @internal */
  ignore(topic: string, node: MemoryBus): void {
    const nodes = this.interest.get(topic);
    if (!nodes) return;
    nodes.delete(node);
    if (nodes.size === 0) this.interest.delete(topic);
  }

  topic(name: string): EngineTopic {
    let t = this.topics.get(name);
    if (!t) this.topics.set(name, (t = { epoch: newEpoch(), offset: 0, history: [] }));
    return t;
  }

  /** Topics the engine holds state for (tests: memory is released once nobody needs a topic). */
  get topicCount(): number {
    return this.topics.size;
  }

  /** Drops a topic's state, as a bus that lost its data would (the next use starts a new epoch). */
  forget(topic: string): void {
    this.topics.delete(topic);
  }

  /** Drops every topic's state, as a bus server restarted empty would. */
  forgetAll(): void {
    this.topics.clear();
    this.seen.clear();
  }

  /** @internal Applies a publication to each of its topics and routes it to the subscribed nodes. */
  publish(p: Publication, from: MemoryBus): Published[] {
    const now = Date.now();
    this.maybeSweep(now);
    const out: Published[] = [];
    for (const name of p.topics) {
      const key = p.id === undefined ? undefined : `${name}\0${p.id}`;
      const seen = key === undefined ? undefined : this.seen.get(key);
      if (seen && seen.expires > now) {
        out.push({ ...seen.at, duplicate: true });
        continue;
      }
      const t = p.retain ? this.topic(name) : undefined;
      const envelope: BusEnvelope = { topic: name, epoch: t ? t.epoch : '', offset: t ? ++t.offset : 0, event: p.event, data: p.data, ts: p.ts, node: p.node, ref: p.ref };
      if (t && this.historySize > 0) {
        t.history.push(envelope);
        if (t.history.length > this.historySize) t.history.shift();
      }
      const at = { epoch: envelope.epoch, offset: envelope.offset };
      if (key !== undefined) this.seen.set(key, { at, expires: now + this.dedupeTtlMs });
      out.push(at);
      // A message that is not retained was delivered on its own node first: no echo back to it.
      for (const node of this.interest.get(name) ?? []) if (p.retain || node !== from) node.enqueue(envelope);
    }
    return out;
  }

  /** @internal */
  load(topic: string, after: number): TopicSnapshot {
    this.maybeSweep(Date.now());
    const t = this.topic(topic);
    return { epoch: t.epoch, offset: t.offset, messages: t.history.filter((m) => m.offset > after) };
  }

  /**
   * Trims expired history and forgets what nobody needs: a topic no node subscribes to whose
   * history is empty (its position can no longer be resumed from anyway), and expired
   * publication ids. Runs from publishes and loads, at most once a second.
   */
  private maybeSweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    const cutoff = now - this.historyTtlMs;
    for (const [name, t] of this.topics) {
      let drop = 0;
      while (drop < t.history.length && t.history[drop]!.ts < cutoff) drop++;
      if (drop) t.history.splice(0, drop);
      if (t.history.length === 0 && !this.interest.has(name)) this.topics.delete(name);
    }
    for (const [key, { expires }] of this.seen) if (expires <= now) this.seen.delete(key);
    for (const [key, { expires }] of this.records) if (expires <= now) this.records.delete(key);
  }
}

export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  readonly presence: PresenceStore;
  readonly records: RecordStore;
  /** @internal The topics this node subscribed to. */
  readonly topics = new Set<string>();
  private handlers: BusHandlers | undefined;
  private up = true;
  private queue: BusEnvelope[] = [];
  private scheduled = false;

  constructor(
    private readonly cluster: MemoryCluster,
    readonly nodeId: string,
    nodeTimeoutMs: number,
  ) {
    this.presence = new MemoryPresence(cluster, nodeId, nodeTimeoutMs, () => this.up);
    const check = () => {
      if (!this.up) throw new BusUnavailableError('memory', this.detail);
    };
    this.records = {
      get: (key) => {
        check();
        const r = cluster.records.get(key);
        return Promise.resolve(r && r.expires > Date.now() ? r.value : undefined);
      },
      set: (key, value, ttlMs) => {
        check();
        cluster.records.set(key, { value, expires: Date.now() + ttlMs });
        return Promise.resolve();
      },
    };
  }

  get connected(): boolean {
    return this.up;
  }

  get shared(): boolean {
    return !this.cluster.private;
  }

  get detail(): string {
    return this.up ? 'connected to the in-process engine' : 'disconnected from the in-process engine';
  }

  get subscriptions(): number {
    return this.topics.size;
  }

  start(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
    this.cluster.attach(this);
    return Promise.resolve();
  }

  /** Test hook: cut this node off the bus (messages published meanwhile never reach it) or reconnect it. */
  setConnected(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    if (up) this.cluster.attach(this);
    else this.cluster.detach(this);
    this.handlers?.status?.(up, this.detail);
    if (up) this.handlers?.resync();
  }

  subscribe(topic: string): Promise<void> {
    this.topics.add(topic);
    if (!this.up) return Promise.reject(new BusUnavailableError('memory', this.detail));
    this.cluster.listen(topic, this);
    return Promise.resolve();
  }

  unsubscribe(topic: string): void {
    if (!this.topics.delete(topic)) return;
    this.cluster.ignore(topic, this);
  }

  /** @internal Delivery is asynchronous and in order, as from a real server. */
  enqueue(envelope: BusEnvelope): void {
    this.queue.push(envelope);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.queue;
      this.queue = [];
      for (const e of batch) this.handlers?.message(e);
    });
  }

  publish(publication: Publication): Promise<Published[]> {
    if (!this.up) return Promise.reject(new BusUnavailableError('memory', this.detail));
    return Promise.resolve(this.cluster.publish(publication, this));
  }

  load(topic: string, after: number): Promise<TopicSnapshot> {
    if (!this.up) return Promise.reject(new BusUnavailableError('memory', this.detail));
    return Promise.resolve(this.cluster.load(topic, after));
  }

  close(): Promise<void> {
    this.cluster.detach(this);
    this.topics.clear();
    this.handlers = undefined;
    return Promise.resolve();
  }
}

class MemoryPresence implements PresenceStore {
  constructor(
    private readonly cluster: MemoryCluster,
    private readonly nodeId: string,
    private readonly nodeTimeoutMs: number,
    private readonly up: () => boolean,
  ) {}

  private check(): void {
    if (!this.up()) throw new BusUnavailableError('memory', 'disconnected from the in-process engine');
  }

  add(topic: string, entry: PresenceEntry): Promise<void> {
    this.check();
    let members = this.cluster.presence.get(topic);
    if (!members) this.cluster.presence.set(topic, (members = new Map()));
    members.set(entry.ref, entry);
    return Promise.resolve();
  }

  remove(topic: string, _node: string, ref: string): Promise<void> {
    this.check();
    const members = this.cluster.presence.get(topic);
    members?.delete(ref);
    if (members?.size === 0) this.cluster.presence.delete(topic);
    return Promise.resolve();
  }

  list(topic: string): Promise<PresenceEntry[]> {
    this.check();
    const live = (node: string) => (this.cluster.heartbeats.get(node) ?? 0) >= Date.now() - this.nodeTimeoutMs;
    return Promise.resolve([...(this.cluster.presence.get(topic)?.values() ?? [])].filter((e) => live(e.node)));
  }

  heartbeat(): Promise<string[]> {
    this.check();
    const now = Date.now();
    this.cluster.heartbeats.set(this.nodeId, now);
    const dead: string[] = [];
    for (const [node, at] of this.cluster.heartbeats) {
      if (at < now - this.nodeTimeoutMs && !this.cluster.cleaned.has(node)) {
        this.cluster.cleaned.add(node);
        this.cluster.heartbeats.delete(node);
        dead.push(node);
      }
    }
    return Promise.resolve(dead);
  }

  takeOver(node: string): Promise<Map<string, PresenceEntry[]>> {
    const out = new Map<string, PresenceEntry[]>();
    for (const [topic, members] of this.cluster.presence) {
      for (const [ref, e] of members) {
        if (e.node !== node) continue;
        members.delete(ref);
        let list = out.get(topic);
        if (!list) out.set(topic, (list = []));
        list.push(e);
      }
      if (members.size === 0) this.cluster.presence.delete(topic);
    }
    return Promise.resolve(out);
  }
}

/**
 * A hub with an in-process engine of its own: what `--bus memory` gives a gateway that
 * runs alone, for embedding the hub in another program (and for tests).
 */
export function createLocalHub(options: Omit<HubOptions, 'bus'>, engine: MemoryClusterOptions = {}): Hub {
  const bus = new MemoryCluster(options.historySize, { private: true, historyTtlMs: options.historyTtlMs, ...engine }).connect();
  const hub = new Hub({ ...options, bus });
  void bus.start({ message: (e) => hub.receive(e), resync: () => hub.resync() });
  return hub;
}
