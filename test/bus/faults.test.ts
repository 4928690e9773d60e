// The bus as a dependency that fails: with a Redis or NATS server of the test's own, a
// publish while it is down answers 503 (never a silent drop), streams that need the bus
// are refused, the state is visible at /api/bus, and after the server comes back the
// nodes reconnect and a stream on another node receives everything in order, without
// loss or duplicate. A node that dies (SIGKILL) has its presence members removed by the
// others within the node timeout.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { Auth } from '../../src/core/auth.js';
import { TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { spawnServe } from '../helpers/serve-process.js';
import { closeClients, joined, supabase } from '../realtime/helpers.js';
import { http, openClient, seqs, waitFor } from '../sse/helpers.js';
import type { MemoryBus } from '../../src/bus/memory.js';
import { cleanBus, privateServer, randomPrefix, startCluster, NATS_URL, REDIS_URL } from './helpers.js';

const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await closeClients();
});

describe.each(['redis', 'nats'] as const)('the %s bus going down and coming back', (kind) => {
  it('answers 503 while the bus is down, then recovers: a stream on the other node gets every event once, in order', async () => {
    const server = await privateServer(kind);
    const cluster = await startCluster(kind, 2, { historySize: 100 }, { redisUrl: server.url, natsUrl: server.url });
    try {
      const [a, b] = cluster.nodes as [TestGateway, TestGateway];
      const token = a.keys.service_role;
      const created = await http('POST', `${a.url}/api/content`, { token, body: { userId: 'bus-down', simulate: false } });
      const id = created.json.contentId as string;
      const onB = openClient(`${b.url}/api/content/${id}/progress`, b.keys.service_role);
      await waitFor(() => onB.of('ready').length === 1, 'ready on B');
      for (let i = 1; i <= 2; i++) expect((await http('POST', `${a.url}/api/content/${id}/progress`, { token, body: { progress: i } })).status).toBe(200);
      await waitFor(() => onB.of('progress').length === 2, 'two events on B');
      const heard: unknown[] = [];
      const sender = await joined(supabase(a).channel(`room-${kind}`, { config: { broadcast: { ack: true } } }));
      await joined(supabase(b).channel(`room-${kind}`).on('broadcast', { event: 'note' }, (m) => heard.push(m.payload)));

      await server.kill();
      await waitFor(() => !a.gateway.bus!.connected && !b.gateway.bus!.connected, 'both nodes see the bus down', 15_000);
      const refused = await http('POST', `${a.url}/api/content/${id}/progress`, { token, body: { progress: 99 } });
      expect(refused.status).toBe(503);
      expect(refused.json.error?.code).toBe('bus_unavailable');
      expect(refused.headers.get('retry-after')).toBe('2');
      const status = await http('GET', `${a.url}/api/bus`);
      expect(status.status).toBe(503);
      expect(status.json).toMatchObject({ kind, connected: false });
      const ready = await http('GET', `${a.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.json.error?.message).toMatch(new RegExp(`not ready: bus \\(${kind} node`));
      const rest = await fetch(`${a.url}/realtime/v1/api/broadcast`, {
        method: 'POST',
        headers: { apikey: token, 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ topic: 'x', event: 'e', payload: {} }] }),
      });
      expect(rest.status).toBe(503);
      // A Realtime broadcast with ack is answered with an error, not acknowledged and dropped.
      expect(await sender.send({ type: 'broadcast', event: 'note', payload: { n: 1 } })).toBe('error');
      // A new stream needs the bus to know where the cluster is: refused, so the client retries elsewhere or later.
      const stream = await http('GET', `${b.url}/api/content/${id}/progress`, { token });
      expect(stream.status).toBe(503);

      await server.start();
      await waitFor(() => a.gateway.bus!.connected && b.gateway.bus!.connected, 'both nodes reconnected', 20_000);
      expect((await http('GET', `${b.url}/api/bus`)).json).toMatchObject({ connected: true });
      expect((await http('GET', `${b.url}/readyz`)).status).toBe(200);
      for (let i = 3; i <= 5; i++) {
        const r = await http('POST', `${a.url}/api/content/${id}/progress`, { token, body: { progress: i } });
        expect(r.status, JSON.stringify(r.json)).toBe(200);
      }
      await waitFor(() => onB.of('progress').length === 5, 'all five events on B', 15_000);
      expect(await sender.send({ type: 'broadcast', event: 'note', payload: { n: 2 } })).toBe('ok');
      await waitFor(() => heard.length === 1, 'the broadcast after recovery on B');
      expect(heard).toEqual([{ n: 2 }]);
      expect(seqs(onB.of('progress'))).toEqual([1, 2, 3, 4, 5]);
      expect(onB.of('progress').map((e) => e.data.progress)).toEqual([1, 2, 3, 4, 5]); // the refused 99 never appears
      onB.close();
    } finally {
      await cluster.stop();
      await server.stop();
    }
  }, 90_000);
});

it('fills in what a node missed while its Redis subscription was cut, before anything newer', async () => {
  const cluster = await startCluster('redis', 2, { historySize: 100 });
  const admin = new Redis(REDIS_URL);
  try {
    const [a, b] = cluster.nodes as [TestGateway, TestGateway];
    const user = 'cut-subscriber';
    const onB = openClient(`${b.url}/v1/stream?topic=user:${user}`, b.keys.service_role);
    await waitFor(() => onB.of('ready').length === 1, 'ready on B');
    await a.gateway.hub.publish(`user:${user}`, 'progress', { progress: 0 });
    await waitFor(() => onB.of('progress').length === 1, 'first event');
    // Cut every pub/sub connection of this cluster's nodes, then publish at once: B's feed misses these.
    const resyncs = async () => (await b.gateway.metrics.registry.getSingleMetric('fanout_bus_resyncs_total')!.get()).values[0]?.value ?? 0;
    expect(await resyncs()).toBe(0);
    const clients = (await admin.client('LIST')) as string;
    let cut = 0;
    for (const line of clients.split('\n')) {
      const name = /name=(\S+)/.exec(line)?.[1];
      const addr = /addr=(\S+)/.exec(line)?.[1];
      if (addr && name === `fanout-${b.gateway.bus!.nodeId}` && /\bssub=[1-9]/.test(line)) {
        await admin.client('KILL', 'ADDR', addr);
        cut++;
      }
    }
    expect(cut).toBe(1);
    for (let i = 1; i <= 10; i++) await a.gateway.hub.publish(`user:${user}`, 'progress', { progress: i });
    await waitFor(() => onB.of('progress').length === 11, 'all eleven events on B', 15_000);
    expect(seqs(onB.of('progress'))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(await resyncs()).toBe(1);
    onB.close();
  } finally {
    admin.disconnect();
    await cluster.stop();
  }
}, 60_000);

it('closes a stream whose missed messages the cluster history no longer holds, and its client resumes into `reset`', async () => {
  const cluster = await startCluster('memory', 2, { historySize: 3, retryMs: 100 });
  try {
    const [a, b] = cluster.nodes as [TestGateway, TestGateway];
    const user = 'gap-too-big';
    const onB = openClient(`${b.url}/v1/stream?topic=user:${user}`, b.keys.service_role);
    await waitFor(() => onB.of('ready').length === 1, 'ready on B');
    await a.gateway.hub.publish(`user:${user}`, 'progress', { progress: 1 });
    await waitFor(() => onB.of('progress').length === 1, 'first event');
    const busB = b.gateway.bus as MemoryBus;
    busB.setConnected(false);
    for (let i = 2; i <= 8; i++) await a.gateway.hub.publish(`user:${user}`, 'progress', { progress: i }); // history keeps 6..8
    busB.setConnected(true);
    // The stream is told why it ends; the client reconnects with its Last-Event-ID and is told reset.
    await waitFor(() => onB.of('error').some((e) => e.data.code === 'resync'), 'the resync close');
    await waitFor(() => onB.of('reset').length === 1, 'reset after reconnecting', 15_000);
    expect(onB.of('reset')[0]!.data).toMatchObject({ reason: 'expired' });
    expect(onB.of('progress').map((e) => e.data.progress)).toEqual([1]); // 2..8 were never shown as if continuous
    onB.close();
  } finally {
    await cluster.stop();
  }
});

/** Starts `fanout serve` in a child process on the given bus; resolves with its URL. */

describe.each(['redis', 'nats'] as const)('a node dying on the %s bus', (kind) => {
  it('has its presence members removed by the others within the node timeout', async () => {
    const nodeTimeoutMs = 1500;
    const cluster = await startCluster(kind, 1, { busNodeTimeoutMs: nodeTimeoutMs });
    const dataDir = mkdtempSync(join(tmpdir(), 'fanout-node-'));
    try {
      const b = cluster.nodes[0]!;
      const child = await spawnServe(['--bus', kind, '--bus-prefix', cluster.prefix, '--bus-node-timeout-ms', String(nodeTimeoutMs), '--redis-url', REDIS_URL, '--nats-url', NATS_URL], dataDir, { FANOUT_REALTIME_CONNECT_ERROR_BACKOFF_MS: '0', FANOUT_REALTIME_CHANNEL_ERROR_BACKOFF_MS: '0' });
      children.push(child.proc);
      const c = { url: child.url, keys: await new Auth(TEST_SECRET).projectKeys() } as TestGateway;
      const topic = `doomed-${kind}`;
      const onC = await joined(supabase(c).channel(topic, { config: { presence: { key: 'carol' } } }));
      expect(await onC.track({ on: 'C' })).toBe('ok');
      const leaves: string[] = [];
      const onB = supabase(b)
        .channel(topic, { config: { presence: { key: 'bob' } } })
        .on('presence', { event: 'leave' }, ({ key }) => leaves.push(key));
      await joined(onB);
      await waitFor(() => Object.keys(onB.presenceState()).includes('carol'), 'carol (on the child node) visible on B');
      const killedAt = Date.now();
      child.proc.kill('SIGKILL');
      await waitFor(() => leaves.includes('carol'), 'carol’s leave on B', 20_000);
      const tookMs = Date.now() - killedAt;
      expect(Object.keys(onB.presenceState())).not.toContain('carol');
      // Bounded: the node timeout plus a heartbeat period and the sweep, with room for a busy machine.
      expect(tookMs).toBeLessThan(nodeTimeoutMs * 6);
      // A client joining now does not see the dead node's member either.
      const late = supabase(b).channel(topic).on('presence', { event: 'sync' }, () => undefined);
      await joined(late);
      await new Promise((r) => setTimeout(r, 300));
      expect(Object.keys(late.presenceState())).not.toContain('carol');
    } finally {
      await cluster.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

it('leaves nothing behind under a test prefix after cleanup', async () => {
  const prefix = randomPrefix();
  const cluster = await startCluster('redis', 1, { busPrefix: prefix });
  await cluster.nodes[0]!.gateway.hub.publish('user:leftover', 'progress', {});
  await cluster.stop();
  const redis = new Redis(REDIS_URL);
  const [, keys] = await redis.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 1000);
  redis.disconnect();
  expect(keys).toEqual([]);
  await cleanBus('nats', prefix);
});
