// The memory bus: the cluster engine in one process. A `MemoryCluster` plays the part of
// the Redis or NATS server (it numbers offsets, keeps history and presence, fans out to
// every connected node); each gateway connects a `MemoryBus` node to it. A gateway that
// runs alone (`--bus memory`, the default) needs no bus at all: its hub numbers offsets
// itself. The cluster is for several gateways in one process (tests, demos) and for
// testing the hub's replica logic, including a node cut off from the bus (`setConnected`).
import { randomBytes } from 'node:crypto';
import { newEpoch } from '../core/hub.js';
import {
  BusUnavailableError,
  type Bus,
  type BusEnvelope,
  type BusHandlers,
  type OutgoingMessage,
  type PresenceEntry,
  type PresenceStore,
  type RecordStore,
  type TopicSnapshot,
} from './types.js';

interface ClusterTopic {
  epoch: string;
  offset: number;
  history: BusEnvelope[];
}

export class MemoryCluster {
  private readonly topics = new Map<string, ClusterTopic>();
  private readonly nodes = new Set<MemoryBus>();
  /** topic → ref → entry */
  readonly presence = new Map<string, Map<string, PresenceEntry>>();
  /** node → last heartbeat (ms) */
  readonly heartbeats = new Map<string, number>();
  readonly cleaned = new Set<string>();
  readonly records = new Map<string, { value: string; expires: number }>();

  constructor(readonly historySize: number) {}

  connect(nodeId?: string, nodeTimeoutMs = 15_000): MemoryBus {
    return new MemoryBus(this, nodeId ?? randomBytes(6).toString('hex'), nodeTimeoutMs);
  }

  /** @internal */
  attach(node: MemoryBus): void {
    this.nodes.add(node);
  }

  /** @internal */
  detach(node: MemoryBus): void {
    this.nodes.delete(node);
  }

  topic(name: string): ClusterTopic {
    let t = this.topics.get(name);
    if (!t) this.topics.set(name, (t = { epoch: newEpoch(), offset: 0, history: [] }));
    return t;
  }

  /** Drops a topic's state, as a bus that lost its data would (the next use starts a new epoch). */
  forget(topic: string): void {
    this.topics.delete(topic);
  }

  /** @internal */
  publish(message: OutgoingMessage, retain: boolean): BusEnvelope {
    const t = this.topic(message.topic);
    const envelope: BusEnvelope = { ...message, epoch: t.epoch, offset: retain ? ++t.offset : 0 };
    if (retain && this.historySize > 0) {
      t.history.push(envelope);
      if (t.history.length > this.historySize) t.history.shift();
    }
    for (const node of this.nodes) node.enqueue(envelope);
    return envelope;
  }
}

export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  readonly presence: PresenceStore;
  readonly records: RecordStore;
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

  get detail(): string {
    return this.up ? 'connected to the in-process cluster' : 'disconnected from the in-process cluster';
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

  publish(message: OutgoingMessage, retain: boolean): Promise<{ epoch: string; offset: number }> {
    if (!this.up) return Promise.reject(new BusUnavailableError('memory', this.detail));
    const { epoch, offset } = this.cluster.publish(message, retain);
    return Promise.resolve({ epoch, offset });
  }

  load(topic: string, after: number): Promise<TopicSnapshot> {
    if (!this.up) return Promise.reject(new BusUnavailableError('memory', this.detail));
    const t = this.cluster.topic(topic);
    return Promise.resolve({ epoch: t.epoch, offset: t.offset, messages: t.history.filter((m) => m.offset > after) });
  }

  close(): Promise<void> {
    this.cluster.detach(this);
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
    if (!this.up()) throw new BusUnavailableError('memory', 'disconnected from the in-process cluster');
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
    this.cluster.presence.get(topic)?.delete(ref);
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
    }
    return Promise.resolve(out);
  }
}
