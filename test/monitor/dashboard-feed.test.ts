import { afterEach, describe, expect, it, vi } from 'vitest';
import { connect } from 'node:net';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { DashboardFeed } from '../../src/monitor/dashboard-feed.js';
import { FeedClient, scrape, waitFor, type SampleData } from './helpers.js';
import { createContent, openProgressStream, publishProgress } from './traffic.js';

let gw: TestGateway | undefined;
const clients: FeedClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await gw?.stop();
  gw = undefined;
});

async function feed(url: string, headers: Record<string, string> = {}): Promise<FeedClient> {
  const c = await FeedClient.open(url, headers);
  clients.push(c);
  return c;
}

interface Hello {
  intervalMs: number;
  points: SampleData['point'][];
  rules: { name: string }[];
  signals: Record<string, { kind: string; help: string }>;
  active: unknown[];
  recent: unknown[];
}

describe('GET /dashboard/feed', () => {
  it('needs the service_role key: 401 without or with a bad one, 403 for other roles', async () => {
    gw = await startGateway();
    const none = await feed(`${gw.url}/dashboard/feed`);
    await waitFor('the 401 body', () => none.ended);
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body)).toEqual({ error: { code: 'missing_api_key', message: 'API key is missing' } });

    const bad = await feed(`${gw.url}/dashboard/feed`, { authorization: 'Bearer not-a-jwt' });
    expect(bad.status).toBe(401);

    const anon = await feed(`${gw.url}/dashboard/feed?apikey=${gw.keys.anon}`);
    await waitFor('the 403 body', () => anon.ended);
    expect(anon.status).toBe(403);
    expect(JSON.parse(anon.body).error).toEqual({ code: 'forbidden', message: 'the dashboard feed requires the service_role key' });

    const user = await feed(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${await gw.userToken('alice')}` });
    expect(user.status).toBe(403);
    expect(gw.gateway.connections.count('dashboard')).toBe(0);
    expect((await scrape(gw.url)).get('fanout_errors_total{kind="auth"}')).toBe(4);
  });

  it('opens with history, rules and signals, then streams one sample per interval', async () => {
    gw = await startGateway({ monitorIntervalMs: 50 }, { sweepMs: 25 });
    // Let some history accumulate before the viewer arrives.
    await new Promise((r) => setTimeout(r, 300));
    const viewer = await feed(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${gw.keys.service_role}` });
    expect(viewer.status).toBe(200);
    const hello = await viewer.next<Hello>('hello');
    expect(hello.intervalMs).toBe(50);
    expect(hello.points.length).toBeGreaterThanOrEqual(2);
    expect(hello.rules.map((r) => r.name)).toContain('sse_connections_high');
    expect(hello.signals.delivery_latency_p99_seconds?.kind).toBe('quantile');

    // Traffic: two EventSource streams on one content item, one on another, and a backend
    // publishing progress to the first.
    const alice = await gw.userToken('alice');
    const [busyId, quietId] = [await createContent(gw, 'alice'), await createContent(gw, 'alice')];
    const streams = [await openProgressStream(gw, busyId, alice), await openProgressStream(gw, busyId, alice), await openProgressStream(gw, quietId, alice)];
    let publishing = true;
    const publisher = (async () => {
      for (let i = 0; publishing; i++) await publishProgress(gw!, busyId, i % 100);
    })();
    try {
      const busy = await viewer.next<SampleData>('sample', (s) => s.point.v.connections_sse === 3 && (s.point.v.messages_out_per_second ?? 0) > 0 && s.busiest[0]?.topic === `content:${busyId}`);
      expect(busy.point.v.connections_dashboard).toBe(1);
      expect(busy.point.v.publishes_per_second).toBeGreaterThan(0);
      expect(busy.point.v.messages_in_per_second).toBeGreaterThan(0);
      expect(busy.point.v.delivery_latency_p99_seconds).toBeGreaterThan(0);
      expect(busy.busiest[0]).toMatchObject({ topic: `content:${busyId}`, subscribers: 2 });
      expect(busy.busiest[0]!.deliveredPerSecond).toBeCloseTo(busy.busiest[0]!.publishedPerSecond * 2, 5);
      expect(busy.busiest.find((b) => b.topic === `content:${quietId}`)).toMatchObject({ subscribers: 1, publishedPerSecond: 0 });
    } finally {
      publishing = false;
      await publisher;
    }
    for (const s of streams.slice(0, 2)) s.close();
    await viewer.next<SampleData>('sample', (s) => s.point.v.connections_sse === 1);
    streams[2]!.close();
    // Samples arrive at the interval, not faster (timing is loose on a shared machine).
    const times = viewer.of<SampleData>('sample').map((s) => s.point.t);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(45);
  });

  it('serializes each frame once, whatever the number of viewers', async () => {
    gw = await startGateway();
    const dashboard = new DashboardFeed(gw.gateway, () => ({ hello: true }));
    gw.gateway.router.on('GET', '/test-feed', (ctx) => dashboard.open(ctx));
    const viewers = await Promise.all([1, 2, 3, 4, 5].map(() => feed(`${gw!.url}/test-feed`, { authorization: `Bearer ${gw!.keys.service_role}` })));
    await Promise.all(viewers.map((v) => v.next('hello')));
    expect(dashboard.size).toBe(5);
    const stringify = vi.spyOn(JSON, 'stringify');
    const from = vi.spyOn(Buffer, 'from');
    try {
      dashboard.broadcast('sample', { n: 42 });
      expect(stringify).toHaveBeenCalledTimes(1);
      expect(from).toHaveBeenCalledTimes(1);
    } finally {
      stringify.mockRestore();
      from.mockRestore();
    }
    for (const v of viewers) expect(await v.next('sample')).toEqual({ n: 42 });
  });

  it('disconnects a viewer that stops reading once its backlog passes the budget, and nobody else', async () => {
    gw = await startGateway({ slowConsumerBytes: 64 * 1024 });
    const dashboard = new DashboardFeed(gw.gateway, () => ({}));
    gw.gateway.router.on('GET', '/test-feed', (ctx) => dashboard.open(ctx));
    const healthy = await feed(`${gw.url}/test-feed`, { authorization: `Bearer ${gw.keys.service_role}` });
    // A raw client that sends the request and then never reads.
    const port = new URL(gw.url).port;
    const stalled = connect(Number(port), '127.0.0.1');
    stalled.write(`GET /test-feed HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${gw.keys.service_role}\r\n\r\n`);
    stalled.pause();
    await waitFor('both viewers', () => dashboard.size === 2);
    const chunk = { blob: 'x'.repeat(256 * 1024) };
    for (let i = 0; i < 200 && dashboard.size === 2; i++) {
      dashboard.broadcast('sample', chunk);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor('the stalled viewer to be dropped', () => dashboard.size === 1);
    const m = await scrape(gw.url);
    expect(m.get('fanout_slow_consumer_disconnects_total{transport="dashboard"}')).toBe(1);
    expect(gw.gateway.connections.count('dashboard')).toBe(1);
    expect(healthy.ended).toBe(false);
    dashboard.broadcast('sample', { after: true });
    expect(await healthy.next('sample', (d: { after?: boolean }) => d.after === true)).toEqual({ after: true });
    stalled.destroy();
  });

  it('always sends the opening frame whole, and closes a viewer that leaves it unread at the second sweep over the budget', async () => {
    gw = await startGateway({ slowConsumerBytes: 64 * 1024 }, { sweepMs: 250 });
    // History far larger than the budget, and than what the kernel's socket buffers take
    // from a reader that stopped: the stalled viewer's backlog stays over the budget with
    // no later write to refuse, so only the sweep can close it.
    const history = 'x'.repeat(8 * 1024 * 1024);
    const dashboard = new DashboardFeed(gw.gateway, () => ({ history }));
    gw.gateway.router.on('GET', '/test-feed', (ctx) => dashboard.open(ctx));
    const healthy = await feed(`${gw.url}/test-feed`, { authorization: `Bearer ${gw.keys.service_role}` });
    expect((await healthy.next<{ history: string }>('hello')).history.length).toBe(history.length);
    const stalled = connect(Number(new URL(gw.url).port), '127.0.0.1');
    stalled.write(`GET /test-feed HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${gw.keys.service_role}\r\n\r\n`);
    stalled.pause();
    await waitFor('both viewers', () => dashboard.size === 2);
    await waitFor('the stalled viewer to be dropped', () => dashboard.size === 1);
    const m = await scrape(gw.url);
    expect(m.get('fanout_slow_consumer_disconnects_total{transport="dashboard"}')).toBe(1);
    expect(m.get('fanout_errors_total{kind="slow_consumer"}')).toBe(1);
    expect(healthy.ended).toBe(false);
    dashboard.broadcast('sample', { after: true });
    expect(await healthy.next('sample')).toEqual({ after: true });
    stalled.destroy();
  });

  it('tells viewers to reconnect elsewhere when the gateway shuts down', async () => {
    gw = await startGateway();
    const viewer = await feed(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${gw.keys.service_role}` });
    await viewer.next('hello');
    await gw.gateway.close();
    expect(await viewer.next('close')).toEqual({ reason: 'shutdown', reconnect: true });
    await waitFor('the stream to end', () => viewer.ended);
    expect(gw.gateway.connections.size).toBe(0);
  });

  it('refuses a viewer over the connection cap with 503 and Retry-After', async () => {
    gw = await startGateway({ maxConnections: 1 });
    const first = await feed(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${gw.keys.service_role}` });
    expect(first.status).toBe(200);
    const res = await fetch(`${gw.url}/dashboard/feed`, { headers: { authorization: `Bearer ${gw.keys.service_role}` } });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('too_many_connections');
    expect((await scrape(gw.url)).get('fanout_connections_rejected_total{reason="too_many_connections",transport="dashboard"}')).toBe(1);
  });
});
