// The Redis bus (ioredis), on one Redis server or on a Redis Cluster
// (`--redis-url redis+cluster://host:port`). Per topic, every key and the channel share a
// hash tag, so they live in one slot of a cluster and one script can touch them all:
//   <prefix>:{<topic>}:m       hash {e: epoch, o: last offset}   (kept topicStateTtlMs after last use)
//   <prefix>:{<topic>}:h       stream of retained messages, id = "<offset>-0", MAXLEN historySize
//   <prefix>:{<topic>}:p       hash of presence members, field "<node>|<ref>"
//   <prefix>:{<topic>}:c       sharded pub/sub channel (SSUBSCRIBE / SPUBLISH) of the topic
//   <prefix>:{<topic>}:d:<id>  "<epoch> <offset>" of publication <id> (deduplication)
//   <prefix>:nodes             sorted set node → last heartbeat; <prefix>:n:<node>:topics its presence topics
//   <prefix>:r:<key>           shared records
// A node SSUBSCRIBEs the channels of the topics its clients use (interest routing), so
// it receives nothing else. A publish is one Lua script for all its topics: per topic,
// HINCRBY the offset, XADD it with its offset as the stream id, SPUBLISH
// "<epoch> <offset> <body>". Redis runs scripts one at a time, so the order of messages on
// a channel is the order of offsets and a subscriber sees them contiguous; a subscriber
// that lost its connection re-subscribes, then reloads what it missed from the streams
// (`resync`). On a cluster, the topics of one publication can live in different slots, so
// each topic gets its own script (sent together); a publication id makes a retry after a
// failure part-way complete it without doubling what went through.
//
// Connections retry with capped exponential back-off. Commands are not queued while
// disconnected (enableOfflineQueue: false): a publish then fails at once, loudly.
// The presence store (the :p hashes, the node heartbeats) is redis-presence.ts.
import { Cluster, Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { newEpoch } from '../core/hub.js';
import { redactUrl, type Logger } from '../core/log.js';
import { decodeBody, encodeBody } from './codec.js';
import { RedisPresence } from './redis-presence.js';
import {
  BusUnavailableError,
  PRESENCE_TTL_MS,
  topicStateTtlMs,
  type Bus,
  type BusHandlers,
  type BusOptions,
  type PresenceStore,
  type Publication,
  type Published,
  type RecordStore,
  type TopicSnapshot,
} from './types.js';

/**
 * KEYS: per topic, meta, stream, dedupe. ARGV: topic count, body, history size, history
 * TTL, topic state TTL, dedupe TTL, retain (1/0), has id (1/0), then per topic its
 * channel and a fresh epoch. Returns "<epoch> <offset>" per topic, with " d" after it
 * when the publication id had been applied to the topic before (nothing was published).
 */
const PUBLISH_SCRIPT = `
local n = tonumber(ARGV[1])
local body = ARGV[2]
local hist = tonumber(ARGV[3])
local retain = ARGV[7] == '1'
local withId = ARGV[8] == '1'
local out = {}
for i = 1, n do
  local meta, stream, dedupe = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local channel, fresh = ARGV[7 + 2 * i], ARGV[8 + 2 * i]
  local done = withId and redis.call('GET', dedupe)
  if done then
    out[i] = done .. ' d'
  else
    local epoch, offset = '-', 0
    if retain then
      epoch = redis.call('HGET', meta, 'e')
      if not epoch then
        epoch = fresh
        redis.call('HSET', meta, 'e', epoch, 'o', 0)
        redis.call('DEL', stream)
      end
      offset = redis.call('HINCRBY', meta, 'o', 1)
      if hist > 0 then
        redis.call('XADD', stream, 'MAXLEN', hist, offset .. '-0', 'b', body)
        redis.call('PEXPIRE', stream, ARGV[4])
      end
      redis.call('PEXPIRE', meta, ARGV[5])
    end
    redis.call('SPUBLISH', channel, epoch .. ' ' .. offset .. ' ' .. body)
    out[i] = epoch .. ' ' .. offset
    if withId then redis.call('SET', dedupe, out[i], 'PX', ARGV[6]) end
  end
end
return out
`;

const LOAD_SCRIPT = `
local epoch = redis.call('HGET', KEYS[1], 'e')
local offset = 0
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('DEL', KEYS[2])
else
  offset = tonumber(redis.call('HGET', KEYS[1], 'o'))
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {epoch, offset, redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+')}
`;

type StreamEntry = [id: string, fields: string[]];

/** Capped exponential back-off with jitter: 100 ms doubling to 3 s. */
export function backoffMs(attempt: number): number {
  const base = Math.min(3000, 100 * 2 ** Math.min(attempt, 5));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

const PREFIX = /^[A-Za-z0-9_-]{1,64}$/;

/** Channels per SSUBSCRIBE when a reconnected node subscribes again to everything it follows. */
const RESUBSCRIBE_BATCH = 500;

/** The scheme that names a Redis Cluster (its seed node; the others are discovered). */
export const REDIS_CLUSTER_SCHEME = 'redis+cluster:';

export interface RedisBusOptions extends BusOptions {
  /** `redis://…` for one server, `redis+cluster://host:port[,host:port…]` for a Redis Cluster. */
  url: string;
  log: Logger;
  /** Test hook: called between the topics of a publication on a cluster, so a test can fail it part-way. */
  betweenTopics?: (topic: string, index: number) => void;
}

/** The connections: one for commands and one for the live feed, or a Redis Cluster client doing both. */
type Client = Redis | Cluster;

/** The seed nodes of a `redis+cluster://` URL, with its credentials. */
function clusterSeeds(url: string): { nodes: { host: string; port: number }[]; username?: string; password?: string } {
  const rest = url.slice(REDIS_CLUSTER_SCHEME.length).replace(/^\/\//, '');
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const hosts = (at >= 0 ? rest.slice(at + 1) : rest).split('/')[0]!;
  const nodes = hosts.split(',').map((h) => {
    const parsed = new URL(`redis://${h}`);
    return { host: parsed.hostname, port: Number(parsed.port || 6379) };
  });
  const [user, pass] = auth ? auth.split(':') : [];
  return { nodes, username: user ? decodeURIComponent(user) : undefined, password: pass !== undefined ? decodeURIComponent(pass) : undefined };
}

export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  readonly shared = true;
  readonly nodeId: string;
  readonly presence: PresenceStore;
  readonly records: RecordStore;
  private readonly cmd: Client;
  private readonly sub: Client;
  private readonly isCluster: boolean;
  private handlers: BusHandlers | undefined;
  /** Topics this node follows (kept across reconnects). */
  private readonly wanted = new Set<string>();
  /** True once every wanted topic is subscribed on the current feed connection. */
  private subscribed = false;
  private everSubscribed = false;
  /** The resubscription started by the feed connection's latest `ready`. */
  private subscribing: Promise<void> | undefined;
  private closed = false;
  private lastError = 'not connected yet';
  private readonly stateTtl: number;
  private readonly keyPrefix: string;

  constructor(private readonly options: RedisBusOptions) {
    if (!PREFIX.test(options.prefix)) throw new Error(`bus prefix ${JSON.stringify(options.prefix)} must be 1-64 of A-Z a-z 0-9 _ -`);
    this.nodeId = options.nodeId ?? randomBytes(6).toString('hex');
    this.keyPrefix = `${options.prefix}:`;
    this.stateTtl = topicStateTtlMs(options);
    const retryStrategy = (times: number) => (this.closed ? null : backoffMs(times));
    const common = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy,
      connectionName: `fanout-${this.nodeId}`,
    };
    this.isCluster = options.url.startsWith(REDIS_CLUSTER_SCHEME);
    if (this.isCluster) {
      const { nodes, username, password } = clusterSeeds(options.url);
      // One cluster client: commands go to each slot's master, SSUBSCRIBEs to its sharded subscriber.
      const cluster = new Cluster(nodes, {
        lazyConnect: true,
        enableOfflineQueue: false,
        shardedSubscribers: true,
        clusterRetryStrategy: retryStrategy,
        redisOptions: { ...common, username, password, lazyConnect: true },
      });
      this.cmd = cluster;
      this.sub = cluster;
    } else {
      this.cmd = new Redis(options.url, common);
      this.sub = new Redis(options.url, { ...common, autoResubscribe: false });
    }
    const connections: [string, Client][] = this.isCluster ? [['cluster', this.cmd]] : [['commands', this.cmd], ['subscriber', this.sub]];
    for (const [name, conn] of connections) {
      conn.on('error', (err: Error) => {
        this.lastError = `${name} connection: ${err.message}`;
      });
      conn.on('close', () => {
        if (conn === this.sub) this.subscribed = false;
        if (!this.closed) this.handlers?.status?.(false, `${name} connection closed; reconnecting`);
      });
    }
    this.cmd.on('ready', () => this.announce());
    this.sub.on('ready', () => this.ensureSubscribed());
    this.sub.on('smessage', (channel: string, text: string) => this.onMessage(channel, text));
    this.presence = new RedisPresence(this.cmd, this.keyPrefix, this.nodeId, options.nodeTimeoutMs, PRESENCE_TTL_MS, (fn) => this.run(fn));
    const recordKey = (key: string) => `${this.keyPrefix}r:${key}`;
    this.records = {
      get: (key) => this.run(async () => (await this.cmd.get(recordKey(key))) ?? undefined),
      set: (key, value, ttlMs) =>
        this.run(async () => {
          await this.cmd.set(recordKey(key), value, 'PX', ttlMs);
        }),
    };
  }

  get connected(): boolean {
    return this.cmd.status === 'ready' && this.sub.status === 'ready' && this.subscribed;
  }

  get detail(): string {
    const where = this.isCluster ? `the Redis Cluster at ${redactUrl(this.options.url.replace(REDIS_CLUSTER_SCHEME, 'redis:'))}` : redactUrl(this.options.url);
    if (this.connected) return `connected to ${where}`;
    const feed = this.isCluster ? '' : `, subscriber: ${this.subscribed ? 'subscribed' : this.sub.status}`;
    return `not connected to ${where} (commands: ${this.cmd.status}${feed}; last error: ${this.lastError})`;
  }

  get subscriptions(): number {
    return this.wanted.size;
  }

  async start(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
    // Connect now; if Redis is not there yet, ioredis keeps retrying and `connected` says so.
    const conns = this.isCluster ? [this.cmd] : [this.cmd, this.sub];
    await Promise.all(conns.map((c) => c.connect().catch(() => undefined)));
    // The resubscription that `ready` starts is one more round trip (and a cluster client may be ready before it says so).
    if (this.sub.status === 'ready') await this.ensureSubscribed();
  }

  /** Starts the (re)subscription of the feed connection unless it is done or under way. */
  private ensureSubscribed(): Promise<void> {
    if (!this.subscribed && !this.subscribing) {
      this.subscribing = this.resubscribe().finally(() => (this.subscribing = undefined));
    }
    return this.subscribing ?? Promise.resolve();
  }

  /** (Re)subscribes to every followed topic, then, after a reconnect, has the hub fill in whatever the feed missed meanwhile. */
  private async resubscribe(): Promise<void> {
    try {
      const channels = [...this.wanted].map((t) => this.channel(t));
      if (this.isCluster) {
        // A cluster's sharded subscriber takes channels of one slot per command.
        await Promise.all(channels.map((c) => this.sub.ssubscribe(c)));
      } else {
        for (let i = 0; i < channels.length; i += RESUBSCRIBE_BATCH) await this.sub.ssubscribe(...channels.slice(i, i + RESUBSCRIBE_BATCH));
      }
    } catch (err) {
      this.lastError = `subscribe: ${(err as Error).message}`;
      return;
    }
    this.subscribed = true;
    if (this.everSubscribed) this.handlers?.resync();
    this.everSubscribed = true;
    this.announce();
  }

  private announce(): void {
    if (this.connected) this.handlers?.status?.(true, this.detail);
  }

  async subscribe(topic: string): Promise<void> {
    if (this.wanted.has(topic) && this.connected) return;
    this.wanted.add(topic);
    if (!this.connected) throw this.unavailable();
    try {
      await this.sub.ssubscribe(this.channel(topic));
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  unsubscribe(topic: string): void {
    if (!this.wanted.delete(topic) || this.sub.status !== 'ready') return;
    this.sub.sunsubscribe(this.channel(topic)).catch((err: unknown) => {
      this.lastError = `unsubscribe: ${(err as Error).message}`;
    });
  }

  private channel(topic: string): string {
    return `${this.keyPrefix}{${topic}}:c`;
  }

  private onMessage(channel: string, text: string): void {
    // `<prefix>:{<topic>}:c`
    const topic = channel.slice(this.keyPrefix.length + 1, channel.length - 3);
    const a = text.indexOf(' ');
    const b = text.indexOf(' ', a + 1);
    const epoch = text.slice(0, a);
    const offset = Number(text.slice(a + 1, b));
    try {
      this.handlers?.message(decodeBody(topic, epoch === '-' ? '' : epoch, offset, text.slice(b + 1)));
    } catch (err) {
      this.options.log.error({ err, topic }, 'undecodable message on the redis bus');
    }
  }

  private unavailable(cause?: unknown): BusUnavailableError {
    if (cause instanceof BusUnavailableError) return cause;
    return new BusUnavailableError('redis', cause instanceof Error ? cause.message : this.detail, { cause });
  }

  /** Runs commands, turning "not connected" and Redis errors into BusUnavailableError. */
  private async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.cmd.status !== 'ready') throw this.unavailable();
    try {
      return await fn();
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  private keys(topic: string): [meta: string, stream: string] {
    const base = `${this.keyPrefix}{${topic}}`;
    return [`${base}:m`, `${base}:h`];
  }

  publish(p: Publication): Promise<Published[]> {
    return this.run(async () => {
      const body = encodeBody(p);
      if (!p.retain && p.id === undefined) {
        // Nothing to number or remember: the plain sharded publish, one pipeline for all topics.
        const prefix = `- 0 ${body}`;
        if (p.topics.length === 1) await this.cmd.spublish(this.channel(p.topics[0]!), prefix);
        else await Promise.all(p.topics.map((t) => this.cmd.spublish(this.channel(t), prefix)));
        return p.topics.map(() => ({ epoch: '', offset: 0 }));
      }
      if (!this.isCluster) return this.publishScript(p.topics, body, p);
      // A cluster: a script per topic (their keys live in different slots), deduplicated by the publication id.
      const out: Published[] = [];
      for (let i = 0; i < p.topics.length; i++) {
        this.options.betweenTopics?.(p.topics[i]!, i);
        out.push(...(await this.publishScript([p.topics[i]!], body, p)));
      }
      return out;
    });
  }

  private async publishScript(topics: readonly string[], body: string, p: Publication): Promise<Published[]> {
    const keys: string[] = [];
    const perTopic: string[] = [];
    for (const topic of topics) {
      const [meta, stream] = this.keys(topic);
      keys.push(meta, stream, `${this.keyPrefix}{${topic}}:d:${p.id ?? ''}`);
      perTopic.push(this.channel(topic), newEpoch());
    }
    const o = this.options;
    const reply = (await this.cmd.eval(
      PUBLISH_SCRIPT,
      keys.length,
      ...keys,
      topics.length,
      body,
      o.historySize,
      o.historyTtlMs,
      this.stateTtl,
      o.dedupeTtlMs,
      p.retain ? 1 : 0,
      p.id === undefined ? 0 : 1,
      ...perTopic,
    )) as string[];
    return reply.map((at) => {
      const [epoch, offset, duplicate] = at.split(' ');
      return { epoch: epoch === '-' ? '' : epoch!, offset: Number(offset), ...(duplicate ? { duplicate: true } : {}) };
    });
  }

  async load(topic: string, after: number): Promise<TopicSnapshot> {
    const [meta, stream] = this.keys(topic);
    const [epoch, offset, entries] = await this.run(async () => (await this.cmd.eval(LOAD_SCRIPT, 2, meta, stream, after, newEpoch(), this.stateTtl)) as [string, number, StreamEntry[]]);
    const messages = entries.map(([id, fields]) => decodeBody(topic, epoch, parseInt(id, 10), fields[1]!));
    return { epoch, offset: Number(offset), messages };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers = undefined;
    const conns = this.isCluster ? [this.cmd] : [this.cmd, this.sub];
    await Promise.all(conns.map((c) => c.quit().then(() => undefined, () => c.disconnect())));
  }
}
