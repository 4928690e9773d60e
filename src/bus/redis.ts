// The Redis bus (ioredis). Per topic, with a hash tag so a topic's keys share a slot:
//   <prefix>:{<topic>}:m   hash {e: epoch, o: last offset}      (kept topicStateTtlMs after last use)
//   <prefix>:{<topic>}:h   stream of retained messages, id = "<offset>-0", MAXLEN historySize
//   <prefix>:{<topic>}:p   hash of presence members, field "<node>|<ref>"
//   <prefix>:t:<topic>     pub/sub channel; every node PSUBSCRIBEs <prefix>:t:*
//   <prefix>:nodes         sorted set node → last heartbeat; <prefix>:n:<node>:topics its presence topics
// A retained publish is one Lua script: HINCRBY the offset, XADD it with its offset as the
// stream id, PUBLISH "<epoch> <offset> <body>". Redis runs scripts one at a time, so the
// order of PUBLISHes is the order of offsets and a subscriber sees them contiguous; a
// subscriber that lost its connection re-subscribes, then reloads what it missed from the
// stream (`resync`). Messages that are not retained are a plain PUBLISH "- 0 <body>".
//
// Both connections retry with capped exponential back-off. Commands are not queued while
// disconnected (enableOfflineQueue: false): a publish then fails at once, loudly.
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { newEpoch } from '../core/hub.js';
import { redactUrl, type Logger } from '../core/log.js';
import { decodeBody, encodeBody } from './codec.js';
import {
  BusUnavailableError,
  PRESENCE_TTL_MS,
  topicStateTtlMs,
  type Bus,
  type BusHandlers,
  type BusOptions,
  type OutgoingMessage,
  type PresenceEntry,
  type PresenceStore,
  type RecordStore,
  type TopicSnapshot,
} from './types.js';

const PUBLISH_SCRIPT = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('DEL', KEYS[2])
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], offset .. '-0', 'b', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[1], epoch .. ' ' .. offset .. ' ' .. ARGV[2])
return {epoch, offset}
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

/** Marks the node alive (by the Redis server's clock) and claims the nodes whose heartbeat is older than the timeout. */
const HEARTBEAT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[2])))
for _, node in ipairs(dead) do redis.call('ZREM', KEYS[1], node) end
return dead
`;

/** The members of a topic whose node is alive. */
const PRESENCE_LIST_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local alive = {}
local out = {}
for i = 1, #all, 2 do
  local node = string.match(all[i], '^([^|]*)|')
  local ok = alive[node]
  if ok == nil then
    local s = redis.call('ZSCORE', KEYS[2], node)
    ok = s ~= false and tonumber(s) >= now - tonumber(ARGV[1])
    alive[node] = ok
  end
  if ok then out[#out + 1] = all[i + 1] end
end
return out
`;

type StreamEntry = [id: string, fields: string[]];

/** Capped exponential back-off with jitter: 100 ms doubling to 3 s. */
export function backoffMs(attempt: number): number {
  const base = Math.min(3000, 100 * 2 ** Math.min(attempt, 5));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

const PREFIX = /^[A-Za-z0-9_-]{1,64}$/;

export interface RedisBusOptions extends BusOptions {
  url: string;
  log: Logger;
}

export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  readonly nodeId: string;
  readonly presence: PresenceStore;
  readonly records: RecordStore;
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly pattern: string;
  private readonly channelPrefix: string;
  private handlers: BusHandlers | undefined;
  private subscribed = false;
  private everSubscribed = false;
  /** The subscribe started by the subscriber connection's latest `ready`. */
  private subscribing: Promise<void> | undefined;
  private closed = false;
  private lastError = 'not connected yet';
  private readonly stateTtl: number;
  private readonly keyPrefix: string;

  constructor(private readonly options: RedisBusOptions) {
    if (!PREFIX.test(options.prefix)) throw new Error(`bus prefix ${JSON.stringify(options.prefix)} must be 1-64 of A-Z a-z 0-9 _ -`);
    this.nodeId = options.nodeId ?? randomBytes(6).toString('hex');
    this.keyPrefix = `${options.prefix}:`;
    this.channelPrefix = `${this.keyPrefix}t:`;
    this.pattern = `${this.channelPrefix}*`;
    this.stateTtl = topicStateTtlMs(options);
    const common = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times: number) => (this.closed ? null : backoffMs(times)),
      connectionName: `fanout-${this.nodeId}`,
    };
    this.cmd = new Redis(options.url, common);
    this.sub = new Redis(options.url, { ...common, autoResubscribe: false });
    for (const [name, conn] of [
      ['commands', this.cmd],
      ['subscriber', this.sub],
    ] as const) {
      conn.on('error', (err: Error) => {
        this.lastError = `${name} connection: ${err.message}`;
      });
      conn.on('close', () => {
        if (name === 'subscriber') this.subscribed = false;
        if (!this.closed) this.handlers?.status?.(false, `${name} connection closed; reconnecting`);
      });
    }
    this.cmd.on('ready', () => this.announce());
    this.sub.on('ready', () => {
      this.subscribing = this.subscribe();
    });
    this.sub.on('pmessage', (_pattern: string, channel: string, text: string) => this.onMessage(channel, text));
    this.presence = new RedisPresence(this.cmd, this.keyPrefix, this.nodeId, options.nodeTimeoutMs, PRESENCE_TTL_MS, () => this.unavailable());
    const recordKey = (key: string) => `${this.keyPrefix}r:${key}`;
    this.records = {
      get: async (key) => {
        if (this.cmd.status !== 'ready') throw this.unavailable();
        try {
          return (await this.cmd.get(recordKey(key))) ?? undefined;
        } catch (err) {
          throw this.unavailable(err);
        }
      },
      set: async (key, value, ttlMs) => {
        if (this.cmd.status !== 'ready') throw this.unavailable();
        try {
          await this.cmd.set(recordKey(key), value, 'PX', ttlMs);
        } catch (err) {
          throw this.unavailable(err);
        }
      },
    };
  }

  get connected(): boolean {
    return this.cmd.status === 'ready' && this.sub.status === 'ready' && this.subscribed;
  }

  get detail(): string {
    if (this.connected) return `connected to ${redactUrl(this.options.url)}`;
    return `not connected to ${redactUrl(this.options.url)} (commands: ${this.cmd.status}, subscriber: ${this.subscribed ? 'subscribed' : this.sub.status}; last error: ${this.lastError})`;
  }

  async start(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
    // Connect now; if Redis is not there yet, ioredis keeps retrying and `connected` says so.
    await Promise.all([this.cmd.connect().catch(() => undefined), this.sub.connect().catch(() => undefined)]);
    // `ready` fires before connect() resolves, but the pattern subscription it starts is
    // one more round trip: wait for it, or a reachable Redis would be reported as down.
    await this.subscribing;
  }

  /** (Re)subscribes, then, after a reconnect, has the hub fill in whatever the feed missed meanwhile. */
  private async subscribe(): Promise<void> {
    try {
      await this.sub.psubscribe(this.pattern);
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

  private onMessage(channel: string, text: string): void {
    const topic = channel.slice(this.channelPrefix.length);
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
    return new BusUnavailableError('redis', cause instanceof Error ? cause.message : this.detail, { cause });
  }

  private keys(topic: string): [meta: string, stream: string] {
    const base = `${this.keyPrefix}{${topic}}`;
    return [`${base}:m`, `${base}:h`];
  }

  async publish(message: OutgoingMessage, retain: boolean): Promise<{ epoch: string; offset: number }> {
    if (this.cmd.status !== 'ready') throw this.unavailable();
    const body = encodeBody(message);
    const channel = this.channelPrefix + message.topic;
    try {
      if (!retain) {
        await this.cmd.publish(channel, `- 0 ${body}`);
        return { epoch: '', offset: 0 };
      }
      const [meta, stream] = this.keys(message.topic);
      const [epoch, offset] = (await this.cmd.eval(
        PUBLISH_SCRIPT,
        2,
        meta,
        stream,
        channel,
        body,
        this.options.historySize,
        this.options.historyTtlMs,
        this.stateTtl,
        newEpoch(),
      )) as [string, number];
      return { epoch, offset: Number(offset) };
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  async load(topic: string, after: number): Promise<TopicSnapshot> {
    if (this.cmd.status !== 'ready') throw this.unavailable();
    const [meta, stream] = this.keys(topic);
    let reply: [string, number, StreamEntry[]];
    try {
      reply = (await this.cmd.eval(LOAD_SCRIPT, 2, meta, stream, after, newEpoch(), this.stateTtl)) as [string, number, StreamEntry[]];
    } catch (err) {
      throw this.unavailable(err);
    }
    const [epoch, offset, entries] = reply;
    const messages = entries.map(([id, fields]) => decodeBody(topic, epoch, parseInt(id, 10), fields[1]!));
    return { epoch, offset: Number(offset), messages };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers = undefined;
    await Promise.all([this.cmd.quit().catch(() => this.cmd.disconnect()), this.sub.quit().catch(() => this.sub.disconnect())]);
  }
}

class RedisPresence implements PresenceStore {
  private readonly nodes: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly nodeTimeoutMs: number,
    private readonly ttlMs: number,
    private readonly unavailable: (cause?: unknown) => BusUnavailableError,
  ) {
    this.nodes = `${prefix}nodes`;
  }

  private hash(topic: string): string {
    return `${this.prefix}{${topic}}:p`;
  }

  private topicsOf(node: string): string {
    return `${this.prefix}n:${node}:topics`;
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready') throw this.unavailable();
    try {
      return await fn();
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  add(topic: string, entry: PresenceEntry): Promise<void> {
    return this.run(async () => {
      const hash = this.hash(topic);
      const topics = this.topicsOf(entry.node);
      await this.redis
        .multi()
        .hset(hash, `${entry.node}|${entry.ref}`, JSON.stringify(entry))
        .pexpire(hash, this.ttlMs)
        .sadd(topics, topic)
        .pexpire(topics, this.ttlMs)
        .exec();
    });
  }

  remove(topic: string, node: string, ref: string): Promise<void> {
    return this.run(async () => {
      await this.redis.hdel(this.hash(topic), `${node}|${ref}`);
    });
  }

  list(topic: string): Promise<PresenceEntry[]> {
    return this.run(async () => {
      const values = (await this.redis.eval(PRESENCE_LIST_SCRIPT, 2, this.hash(topic), this.nodes, this.nodeTimeoutMs)) as string[];
      return values.map((v) => JSON.parse(v) as PresenceEntry);
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

