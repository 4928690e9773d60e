// The NATS bus's presence store: members in the KV bucket <prefix>_presence under
// m.<node>.<tok>.<ref>, node liveness in the bucket <prefix>_nodes, whose entries expire
// `nodeTimeoutMs` after a node's last heartbeat; the survivor whose claim c.<node> is
// created first takes a dead node's members over.
import type { KV } from 'nats';
import { tokenTopic, topicToken } from './codec.js';
import type { BusUnavailableError, PresenceEntry, PresenceStore } from './types.js';

/** The buckets presence reads and writes, on the bus's current connection. */
export interface PresenceBuckets {
  members: KV;
  nodes: KV;
}

/** What presence needs from the NATS bus: its node id, its live buckets (or the 503 to answer), and how it reports a failure. */
export interface PresenceBus {
  readonly nodeId: string;
  live(): PresenceBuckets;
  unavailable(cause: unknown): BusUnavailableError;
}

export class NatsPresence implements PresenceStore {
  /** Nodes seen alive at the last heartbeat; a node that disappears from the bucket is dead. */
  private known = new Set<string>();

  constructor(private readonly bus: PresenceBus) {}

  private key(node: string, topic: string, ref: string): string {
    return `m.${node}.${topicToken(topic)}.${ref}`;
  }

  private async run<T>(fn: (s: PresenceBuckets) => Promise<T>): Promise<T> {
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

  private async liveNodes(s: PresenceBuckets): Promise<Set<string>> {
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
