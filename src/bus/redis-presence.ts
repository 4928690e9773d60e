// The Redis bus's presence store: each topic's members in the hash <prefix>:{<topic>}:p
// (field "<node>|<ref>"), the topics a node has members in under <prefix>:n:<node>:topics,
// and node liveness as the sorted set <prefix>:nodes of heartbeats by the Redis server's
// clock, so a node that stops beating is found dead by the others and its members taken over.
import type { Cluster, Redis } from 'ioredis';
import type { PresenceEntry, PresenceStore } from './types.js';

/** Runs commands on the bus's connection, turning "not connected" and Redis errors into BusUnavailableError (the bus's own `run`). */
export type RedisCommands = <T>(fn: () => Promise<T>) => Promise<T>;

/** Marks the node alive (by the Redis server's clock) and claims the nodes whose heartbeat is older than the timeout. */
const HEARTBEAT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[2])))
for _, node in ipairs(dead) do redis.call('ZREM', KEYS[1], node) end
return dead
`;

/** The nodes whose heartbeat (by the Redis server's clock) is within the timeout. */
const LIVE_NODES_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
`;

/** Presence members in per-topic hashes, and node liveness as a sorted set of heartbeats (by the Redis server's clock). */
export class RedisPresence implements PresenceStore {
  private readonly nodes: string;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly nodeTimeoutMs: number,
    private readonly ttlMs: number,
    private readonly run: RedisCommands,
  ) {
    this.nodes = `${prefix}nodes`;
  }

  private hash(topic: string): string {
    return `${this.prefix}{${topic}}:p`;
  }

  private topicsOf(node: string): string {
    return `${this.prefix}n:${node}:topics`;
  }

  add(topic: string, entry: PresenceEntry): Promise<void> {
    return this.run(async () => {
      const hash = this.hash(topic);
      const topics = this.topicsOf(entry.node);
      // Two transactions: the topic's hash and the node's set may live in different cluster slots.
      await Promise.all([
        this.redis.multi().hset(hash, `${entry.node}|${entry.ref}`, JSON.stringify(entry)).pexpire(hash, this.ttlMs).exec(),
        this.redis.multi().sadd(topics, topic).pexpire(topics, this.ttlMs).exec(),
      ]);
    });
  }

  remove(topic: string, node: string, ref: string): Promise<void> {
    return this.run(async () => {
      await this.redis.hdel(this.hash(topic), `${node}|${ref}`);
    });
  }

  list(topic: string): Promise<PresenceEntry[]> {
    return this.run(async () => {
      // Two reads sent together: the topic's hash and the node set may live in different cluster slots.
      const [all, live] = await Promise.all([this.redis.hgetall(this.hash(topic)), this.redis.eval(LIVE_NODES_SCRIPT, 1, this.nodes, this.nodeTimeoutMs) as Promise<string[]>]);
      const alive = new Set(live);
      const out: PresenceEntry[] = [];
      for (const [field, value] of Object.entries(all)) if (alive.has(field.slice(0, field.indexOf('|')))) out.push(JSON.parse(value) as PresenceEntry);
      return out;
    });
  }

  heartbeat(): Promise<string[]> {
    return this.run(async () => (await this.redis.eval(HEARTBEAT_SCRIPT, 1, this.nodes, this.nodeId, this.nodeTimeoutMs)) as string[]);
  }

  takeOver(node: string): Promise<Map<string, PresenceEntry[]>> {
    return this.run(async () => {
      const out = new Map<string, PresenceEntry[]>();
      const topicsKey = this.topicsOf(node);
      const topics = await this.redis.smembers(topicsKey);
      for (const topic of topics) {
        const hash = this.hash(topic);
        const all = await this.redis.hgetall(hash);
        const fields = Object.keys(all).filter((f) => f.startsWith(`${node}|`));
        if (!fields.length) continue;
        await this.redis.hdel(hash, ...fields);
        out.set(
          topic,
          fields.map((f) => JSON.parse(all[f]!) as PresenceEntry),
        );
      }
      await this.redis.del(topicsKey);
      return out;
    });
  }
}

