import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { FeedClient, scrape, waitFor, type SampleData } from './helpers.js';
import { openStandIn } from './stand-in-transport.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ monitorIntervalMs: 50 }, { sweepMs: 25 });
});
afterAll(async () => {
  await gw.stop();
});

describe('GET /metrics', () => {
  it('serves Prometheus text with the process series the issue asks for', async () => {
    const res = await fetch(`${gw.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = await scrape(gw.url);
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'process_open_fds',
      'process_max_fds',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(m.types.has(name), name).toBe(true);
    }
    expect(m.get('process_max_fds')).toBeGreaterThan(0);
    expect(m.get('process_open_fds')).toBeGreaterThan(0);
  });

  it('moves every gateway series as clients connect, publish and disconnect', async () => {
    const base = await scrape(gw.url);
    for (const t of ['sse', 'poll', 'ws', 'dashboard']) expect(base.get(`fanout_connections{transport="${t}"}`), t).toBe(0);

    // Connect: two real dashboard feeds (real sockets) and three stand-in SSE streams on one topic.
    const feeds = [await FeedClient.open(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${gw.keys.service_role}` }), await FeedClient.open(`${gw.url}/dashboard/feed?apikey=${gw.keys.service_role}`)];
    const streams = [1, 2, 3].map((i) => openStandIn(gw.gateway, 'sse', 'content:42', `user-${i}`));
    const poll = openStandIn(gw.gateway, 'poll', 'content:42', 'user-9');
    const connected = await scrape(gw.url);
    expect(connected.get('fanout_connections{transport="dashboard"}')).toBe(2);
    expect(connected.get('fanout_connections{transport="sse"}')).toBe(3);
    expect(connected.get('fanout_connections{transport="poll"}')).toBe(1);
    expect(connected.get('fanout_connections_opened_total{transport="dashboard"}')).toBe(2);
    // Each feed holds a client and a server socket in this process.
    expect(connected.get('process_open_fds')!).toBeGreaterThanOrEqual(base.get('process_open_fds')! + 4);

    // Publish: 10 messages to 4 subscribers.
    for (let i = 0; i < 10; i++) gw.gateway.hub.publish('content:42', 'progress', { progress: i * 10 }, { ts: Date.now() - 30 });
    gw.gateway.metrics.received('rest', 100);
    const published = await scrape(gw.url);
    expect(published.get('fanout_publishes_total')! - base.get('fanout_publishes_total')!).toBe(10);
    expect(published.get('fanout_messages_total{direction="out",transport="sse"}')! - base.get('fanout_messages_total{direction="out",transport="sse"}')!).toBe(30);
    expect(published.get('fanout_messages_total{direction="out",transport="poll"}')! - base.get('fanout_messages_total{direction="out",transport="poll"}')!).toBe(10);
    expect(published.get('fanout_messages_total{direction="in",transport="rest"}')).toBe(1);
    expect(published.get('fanout_bytes_total{direction="out",transport="sse"}')!).toBeGreaterThan(base.get('fanout_bytes_total{direction="out",transport="sse"}')!);
    expect(published.get('fanout_delivery_latency_seconds_count{transport="sse"}')).toBe(30);
    // Stamped 30 ms in the past: every delivery lands above the 25 ms bucket.
    expect(published.get('fanout_delivery_latency_seconds_bucket{le="0.025",transport="sse"}')).toBe(0);
    expect(published.get('fanout_delivery_latency_seconds_bucket{le="+Inf",transport="sse"}')).toBe(30);

    // An unauthorized request counts as an auth error and as a 401.
    expect((await fetch(`${gw.url}/api/alerts`)).status).toBe(401);
    const errored = await scrape(gw.url);
    expect(errored.get('fanout_errors_total{kind="auth"}')).toBe(1);
    expect(errored.get('fanout_http_requests_total{status="401"}')).toBe(1);

    // Disconnect.
    for (const f of feeds) f.close();
    for (const s of [...streams, poll]) s.end();
    const gone = await waitFor('the feeds to close', async () => {
      const m = await scrape(gw.url);
      return m.get('fanout_connections{transport="dashboard"}') === 0 ? m : undefined;
    });
    expect(gone.get('fanout_connections{transport="sse"}')).toBe(0);
    expect(gone.get('fanout_connections{transport="poll"}')).toBe(0);
    expect(gone.get('fanout_connections_opened_total{transport="dashboard"}')).toBe(2);
  });

  it('exposes the Realtime and change-feed instruments, and the monitor reads them', async () => {
    const m = gw.gateway.metrics;
    m.channels.set(3);
    m.presenceMembers.set(7);
    m.joins.labels('ok').inc(4);
    m.changeFeedLag.observe(0.2);
    m.changeFeedLagLast.set(0.2);
    const scraped = await scrape(gw.url);
    expect(scraped.get('fanout_realtime_channels')).toBe(3);
    expect(scraped.get('fanout_presence_members')).toBe(7);
    expect(scraped.get('fanout_realtime_joins_total{result="ok"}')).toBe(4);
    expect(scraped.get('fanout_change_feed_lag_seconds_count')).toBe(1);

    const feed = await FeedClient.open(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${gw.keys.service_role}` });
    try {
      const sample = await feed.next<SampleData>('sample', (s) => s.point.v.channels === 3);
      expect(sample.point.v.presence_members).toBe(7);
      expect(sample.point.v.change_feed_lag_last_seconds).toBeCloseTo(0.2);
      expect(sample.point.v.open_files).toBeGreaterThan(0);
      expect(sample.point.v.rss_bytes).toBeGreaterThan(10_000_000);
    } finally {
      feed.close();
    }
  });

  it('reports event-loop lag over the last interval, whoever scrapes', async () => {
    // Block the loop for 300 ms; the next sample sees it. (The machine is shared, so
    // thresholds leave room for ordinary scheduling delays.)
    const until = Date.now() + 300;
    while (Date.now() < until);
    const blocked = await waitFor('the lag to be seen', async () => {
      const s = await scrape(gw.url);
      return s.get('fanout_event_loop_lag_max_seconds')! >= 0.25 ? s : undefined;
    });
    expect(blocked.get('fanout_event_loop_lag_max_seconds')).toBeLessThan(2);
    // It is the last interval's figure, not a running maximum: it falls back once the loop runs freely.
    await waitFor('the lag to fall back', async () => (await scrape(gw.url)).get('fanout_event_loop_lag_max_seconds')! < 0.25, 20_000);
  });

  it('documents every fanout_ metric in the README, and keeps the core names stable', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Monitoring'));
    expect(section.length).toBeGreaterThan(100);
    const { types } = await scrape(gw.url);
    const ours = [...types.keys()].filter((n) => n.startsWith('fanout_'));
    const stable = [
      'fanout_connections',
      'fanout_connections_opened_total',
      'fanout_connections_rejected_total',
      'fanout_messages_total',
      'fanout_bytes_total',
      'fanout_delivery_latency_seconds',
      'fanout_errors_total',
      'fanout_slow_consumer_disconnects_total',
      'fanout_publishes_total',
      'fanout_realtime_channels',
      'fanout_presence_members',
      'fanout_realtime_joins_total',
      'fanout_change_feed_lag_seconds',
      'fanout_change_feed_lag_last_seconds',
      'fanout_http_requests_total',
      'fanout_alerts_firing',
      'fanout_alert_webhook_failures_total',
      'fanout_event_loop_lag_p99_seconds',
      'fanout_event_loop_lag_max_seconds',
    ];
    for (const name of stable) expect(ours, name).toContain(name);
    for (const name of ours) expect(section, `README "Monitoring" documents ${name}`).toContain(`\`${name}\``);
  });
});
