// Scale-out that scales, on every bus (the in-process engine, Redis, a real three-node
// Redis Cluster, NATS): a node receives from the bus only the topics its own clients use
// (counted by fanout_bus_messages_received_total, what the bus client hands over), and
// stops receiving them once the last client left and the linger passed; clients that come
// and go while a publisher never stops lose nothing and get nothing twice; a broadcast
// reaches the members on the sender's node without the bus and the node drops its own
// echo; a progress event goes to its content and user topics in one bus operation, and an
// Idempotency-Key retry after a failure between the two topics publishes each once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Registry } from 'prom-client';
import { http, openClient, seqs, waitFor, type Client } from '../sse/helpers.js';
import { closeClients, joined, supabase } from '../realtime/helpers.js';
import { cleanBus, NATS_URL, randomPrefix, REDIS_URL, startCluster, type Cluster } from './helpers.js';
import { startRedisCluster, type RedisClusterServer } from '../helpers/redis-cluster.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisBus } from '../../src/bus/redis.js';
import { NatsBus } from '../../src/bus/nats.js';
import { createLogger } from '../../src/core/log.js';
import type { Bus } from '../../src/bus/types.js';
import type { GatewayConfig } from '../../src/core/config.js';

type Kind = 'memory' | 'redis' | 'redis-cluster' | 'nats';
const KINDS: Kind[] = ['memory', 'redis', 'redis-cluster', 'nats'];

const LINGER_MS = 150;

async function metric(registry: Registry, name: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  return (await m.get()).values.reduce((sum, v) => sum + v.value, 0);
}

const received = (n: TestGateway) => metric(n.gateway.metrics.registry, 'fanout_bus_messages_received_total');
const subscriptions = (n: TestGateway) => metric(n.gateway.metrics.registry, 'fanout_bus_subscriptions');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(KINDS)('interest routing on the %s bus', (kind) => {
  let redisCluster: RedisClusterServer | undefined;
  let cluster: Cluster;
  beforeAll(async () => {
    if (kind === 'redis-cluster') redisCluster = await startRedisCluster();
    cluster = await startCluster(kind === 'redis-cluster' ? 'redis' : kind, 2, { historySize: 2000, busLingerMs: LINGER_MS }, redisCluster ? { redisUrl: redisCluster.url } : {});
  }, 60_000);
  afterAll(async () => {
    await closeClients();
    await cluster?.stop();
    await redisCluster?.stop();
  }, 30_000);

  const node = (i: number) => cluster.nodes[i]!;

  it('hands a node only the messages of topics its clients use, and none once the last one left', async () => {
    const [a, b] = [node(0), node(1)];
    const wanted = `user:${kind}-wanted`;
    const other = `user:${kind}-other`;
    const onB = openClient(`${b.url}/v1/stream?topic=${wanted}`, b.keys.service_role);
    await waitFor(() => onB.of('ready').length === 1, 'ready on B');
    expect(await subscriptions(b)).toBe(1);
    const before = { a: await received(a), b: await received(b) };
    for (let i = 0; i < 20; i++) await a.gateway.hub.publish(other, 'progress', { i });
    for (let i = 0; i < 5; i++) await a.gateway.hub.publish(wanted, 'progress', { i });
    await waitFor(() => onB.of('progress').length === 5, 'five events on B');
    await sleep(200);
    // B was handed exactly the five messages of its one topic; A, with no clients, nothing.
    expect((await received(b)) - before.b).toBe(5);
    expect((await received(a)) - before.a).toBe(0);
    onB.close();
    await waitFor(() => b.gateway.hub.subscriberCount(wanted) === 0, 'the stream to leave');
    // Within the linger the node stays subscribed; after it, it is not.
    await sleep(LINGER_MS + 300);
    expect(await subscriptions(b)).toBe(0);
    const after = await received(b);
    for (let i = 0; i < 5; i++) await a.gateway.hub.publish(wanted, 'progress', { i });
    await sleep(200);
    expect(await received(b)).toBe(after);
  });

  it('loses nothing and repeats nothing while clients subscribe and leave under a steady publish', async () => {
    const [a, b] = [node(0), node(1)];
    const topic = `user:${kind}-churn`;
    let published = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        await a.gateway.hub.publish(topic, 'progress', { n: ++published });
        await sleep(2);
      }
    })();
    const got: number[] = [];
    let lastId: string | undefined;
    try {
      for (let round = 0; round < 12; round++) {
        const c: Client = openClient(`${b.url}/v1/stream?topic=${topic}${lastId ? '' : '&from=start'}`, b.keys.service_role, lastId ? { 'last-event-id': lastId } : {});
        await waitFor(() => c.of('ready').length === 1, `ready in round ${round}`);
        const seen = c.of('progress').length;
        await waitFor(() => c.of('progress').length >= seen + 3, `live events in round ${round}`);
        c.close();
        const events = c.of('progress');
        got.push(...seqs(events));
        lastId = events.at(-1)?.id ?? lastId;
        expect(c.of('reset')).toEqual([]);
        // Sometimes back within the linger (the node stays subscribed), sometimes after it (it resubscribes).
        await sleep(round % 2 ? 20 : LINGER_MS + 250);
      }
    } finally {
      publishing = false;
      await publisher;
    }
    const last = openClient(`${b.url}/v1/stream?topic=${topic}`, b.keys.service_role, { 'last-event-id': lastId! });
    await waitFor(() => seqs(last.of('progress')).at(-1) === published, 'the final catch-up', 15_000);
    last.close();
    got.push(...seqs(last.of('progress')));
    expect(got).toEqual(Array.from({ length: published }, (_, i) => i + 1));
  }, 60_000);

  it('delivers a broadcast on the sender’s own node without the bus (self: false and self: true) and drops the echo', async () => {
    const [a, b] = [node(0), node(1)];
    const topic = `local-first-${kind}`;
    const got = { quietSender: [] as unknown[], loudSender: [] as unknown[], neighbour: [] as unknown[], remote: [] as unknown[] };
    const quiet = await joined(supabase(a).channel(topic, { config: { broadcast: { self: false, ack: true } } }).on('broadcast', { event: 'e' }, (m) => got.quietSender.push(m.payload)));
    const loud = await joined(supabase(a).channel(topic, { config: { broadcast: { self: true, ack: true } } }).on('broadcast', { event: 'e' }, (m) => got.loudSender.push(m.payload)));
    await joined(supabase(a).channel(topic).on('broadcast', { event: 'e' }, (m) => got.neighbour.push(m.payload)));
    await joined(supabase(b).channel(topic).on('broadcast', { event: 'e' }, (m) => got.remote.push(m.payload)));
    const echoes = await metric(a.gateway.metrics.registry, 'fanout_bus_echoes_dropped_total');
    expect(await quiet.send({ type: 'broadcast', event: 'e', payload: { from: 'quiet' } })).toBe('ok');
    expect(await loud.send({ type: 'broadcast', event: 'e', payload: { from: 'loud' } })).toBe('ok');
    await waitFor(() => got.remote.length === 2 && got.neighbour.length === 2, 'both broadcasts on A and B');
    await sleep(200);
    expect(got.quietSender).toEqual([{ from: 'loud' }]);
    expect(got.loudSender).toEqual([{ from: 'quiet' }, { from: 'loud' }]);
    expect(got.neighbour).toEqual([{ from: 'quiet' }, { from: 'loud' }]);
    expect(got.remote).toEqual([{ from: 'quiet' }, { from: 'loud' }]);
    // The memory engine does not send a node its own unretained messages at all; Redis and NATS do, and A drops them.
    if (kind !== 'memory') expect(await metric(a.gateway.metrics.registry, 'fanout_bus_echoes_dropped_total')).toBe(echoes + 2);
  });

  it('replays the first answer to an Idempotency-Key retry, and refuses the key with another request', async () => {
    const a = node(0);
    const path = `${a.url}/api/content/idem-${kind}/progress`;
    const body = { progress: 10, userId: `idem-user-${kind}` };
    const first = await http('POST', path, { token: a.keys.service_role, body, headers: { 'idempotency-key': `k-${kind}` } });
    expect(first.status).toBe(201);
    const again = await http('POST', path, { token: a.keys.service_role, body, headers: { 'idempotency-key': `k-${kind}` } });
    expect(again.status).toBe(201);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    // On another node too: the answer is a record on the bus.
    const elsewhere = await http('POST', `${node(1).url}/api/content/idem-${kind}/progress`, { token: a.keys.service_role, body, headers: { 'idempotency-key': `k-${kind}` } });
    expect(elsewhere.json).toEqual(first.json);
    const reused = await http('POST', path, { token: a.keys.service_role, body: { progress: 20 }, headers: { 'idempotency-key': `k-${kind}` } });
    expect(reused.status).toBe(422);
    expect(reused.json.error?.code).toBe('idempotency_key_reused');
    const bad = await http('POST', path, { token: a.keys.service_role, body, headers: { 'idempotency-key': 'has space' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error?.code).toBe('invalid_idempotency_key');
    const next = await http('POST', path, { token: a.keys.service_role, body: { progress: 20 } });
    expect(next.json.seq).toBe(2); // the retries published nothing
  });
});

/** A gateway on its own bus object, with a fault injected before the given topic index of a publication. */
async function nodeWithFault(kind: Exclude<Kind, 'memory'>, prefix: string, url: string | undefined, failAt: { index: number; times: number }): Promise<TestGateway> {
  const log = createLogger({ level: 'silent' });
  const betweenTopics = (_topic: string, index: number) => {
    if (index === failAt.index && failAt.times > 0) {
      failAt.times--;
      throw new Error('injected: the bus failed between the topics of a publication');
    }
  };
  const options = { prefix, historySize: 100, historyTtlMs: 300_000, nodeTimeoutMs: 15_000, recordTtlMs: 3600_000, dedupeTtlMs: 3600_000, log, betweenTopics };
  const bus: Bus = kind === 'nats' ? new NatsBus({ ...options, servers: NATS_URL }) : new RedisBus({ ...options, url: url ?? REDIS_URL });
  const config: Partial<GatewayConfig> = { bus: kind === 'nats' ? 'nats' : 'redis', busPrefix: prefix, ...(url ? { redisUrl: url } : {}) };
  return startGateway(config, { bus, sweepMs: 100, processMetrics: false });
}

describe.each(['redis', 'redis-cluster', 'nats'] as const)('one publish for two topics on the %s bus', (kind) => {
  let redisCluster: RedisClusterServer | undefined;
  const prefix = randomPrefix();
  const failAt = { index: 1, times: 0 };
  let gw: TestGateway;
  beforeAll(async () => {
    if (kind === 'redis-cluster') redisCluster = await startRedisCluster();
    gw = await nodeWithFault(kind, prefix, redisCluster?.url, failAt);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await cleanBus(kind === 'nats' ? 'nats' : 'redis', prefix);
    await redisCluster?.stop();
  }, 30_000);

  it('publishes each topic once when an Idempotency-Key retry follows a failure between them', async () => {
    const user = `pair-${kind}`;
    const contentTopic = `content:pair-${kind}`;
    const created = await http('POST', `${gw.url}/api/content`, { token: gw.keys.service_role, body: { userId: user, contentId: `pair-${kind}`, simulate: false } });
    expect(created.status).toBe(201);
    // Opened after the item exists: a stream naming an unknown content topic is refused with 404
    // (and EventSource does not retry), so opening it first raced the create.
    const onContent = openClient(`${gw.url}/v1/stream?topic=${contentTopic}&topic=user:${user}&from=start`, gw.keys.service_role);
    await waitFor(() => onContent.of('ready').length === 1, 'ready');
    // One Lua script on one Redis cannot fail half-way; a cluster or NATS stores the topics
    // separately, and the injected fault hits between them.
    failAt.times = kind === 'redis' ? 0 : 1;
    const path = `${gw.url}/api/content/pair-${kind}/progress`;
    const first = await http('POST', path, { token: gw.keys.service_role, body: { progress: 50 }, headers: { 'idempotency-key': 'pair-1' } });
    if (kind === 'redis') expect(first.status).toBe(200);
    else expect(first.status).toBe(503);
    const retry = await http('POST', path, { token: gw.keys.service_role, body: { progress: 50 }, headers: { 'idempotency-key': 'pair-1' } });
    expect(retry.status).toBe(200);
    expect(retry.json.seq).toBe(1);
    await http('POST', path, { token: gw.keys.service_role, body: { progress: 60 } });
    await waitFor(() => onContent.of('progress').length === 4, 'two events on each topic');
    await sleep(200);
    onContent.close();
    const byTopic = (t: string) => onContent.of('progress').filter((e) => e.data.topic === t);
    expect(byTopic(contentTopic).map((e) => [e.data.seq, e.data.progress])).toEqual([
      [1, 50],
      [2, 60],
    ]);
    expect(byTopic(`user:${user}`).map((e) => [e.data.seq, e.data.progress])).toEqual([
      [1, 50],
      [2, 60],
    ]);
  });
});
