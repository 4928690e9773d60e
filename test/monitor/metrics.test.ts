import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { TEST_SECRET, startGateway, type TestGateway } from '../helpers/gateway.js';
import { FeedClient, scrape, waitFor, type SampleData } from './helpers.js';
import { createContent, joinRoom, leaveRoom, openLongPoll, openProgressStream, postComment, publishProgress, watchComments } from './traffic.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createTestDatabase } from '../helpers/database.js';

const FANOUT = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));

type Scrape = Awaited<ReturnType<typeof scrape>>;

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

  it('moves every gateway series as real clients connect, publish and disconnect', async () => {
    const base = await scrape(gw.url);
    for (const t of ['sse', 'poll', 'ws', 'dashboard']) expect(base.get(`fanout_connections{transport="${t}"}`), t).toBe(0);
    const delta = (now: Scrape, series: string) => now.get(series)! - (base.get(series) ?? 0);

    // Connect: three EventSource streams and a long-poll on alice's content, two supabase-js
    // clients in a Realtime room with presence, and two dashboard feeds.
    const alice = await gw.userToken('alice');
    const contentId = await createContent(gw, 'alice');
    const streams = await Promise.all([1, 2, 3].map(() => openProgressStream(gw, contentId, alice)));
    const poll = openLongPoll(gw, contentId, alice);
    const members = [await joinRoom(gw, 'room:metrics', 'ann'), await joinRoom(gw, 'room:metrics', 'bob')];
    const feeds = [
      await FeedClient.open(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${gw.keys.service_role}` }),
      await FeedClient.open(`${gw.url}/dashboard/feed?apikey=${gw.keys.service_role}`),
    ];
    const connected = await waitFor('every connection to register', async () => {
      const m = await scrape(gw.url);
      return m.get('fanout_connections{transport="poll"}') === 1 && m.get('fanout_presence_members') === 2 ? m : undefined;
    });
    expect(connected.get('fanout_connections{transport="sse"}')).toBe(3);
    expect(connected.get('fanout_connections{transport="ws"}')).toBe(2);
    expect(connected.get('fanout_connections{transport="dashboard"}')).toBe(2);
    expect(delta(connected, 'fanout_connections_opened_total{transport="sse"}')).toBe(3);
    expect(delta(connected, 'fanout_connections_opened_total{transport="dashboard"}')).toBe(2);
    expect(connected.get('fanout_realtime_channels')).toBe(2);
    expect(delta(connected, 'fanout_realtime_joins_total{result="ok"}')).toBe(2);
    expect(delta(connected, 'fanout_messages_total{direction="in",transport="ws"}')).toBeGreaterThanOrEqual(4); // joins and tracks
    // Eight connections whose client and server sockets both live in this process (fetch's
    // keep-alive pool makes the exact count drift, so only the floor is checked).
    expect(connected.get('process_open_fds')!).toBeGreaterThanOrEqual(base.get('process_open_fds')! + 8);

    // Publish: 10 progress events over HTTP (to 3 streams + the poll), and a broadcast in the room.
    for (let i = 1; i <= 10; i++) await publishProgress(gw, contentId, i * 10);
    await members[0]!.channel.send({ type: 'broadcast', event: 'cursor', payload: { x: 1 } });
    await waitFor('every stream to receive the events', () => streams.every((s) => s.received === 10) && members[1]!.broadcasts === 1);
    expect(await poll.done).toBe(200);
    const published = await scrape(gw.url);
    expect(delta(published, 'fanout_publishes_total')).toBeGreaterThanOrEqual(11);
    expect(delta(published, 'fanout_messages_total{direction="in",transport="rest"}')).toBe(10);
    expect(delta(published, 'fanout_bytes_total{direction="in",transport="rest"}')).toBeGreaterThan(10 * 20);
    expect(delta(published, 'fanout_messages_total{direction="out",transport="sse"}')).toBeGreaterThanOrEqual(30);
    expect(delta(published, 'fanout_messages_total{direction="out",transport="poll"}')).toBeGreaterThanOrEqual(1);
    expect(delta(published, 'fanout_messages_total{direction="out",transport="ws"}')).toBeGreaterThanOrEqual(1);
    expect(delta(published, 'fanout_bytes_total{direction="out",transport="sse"}')).toBeGreaterThan(30 * 50);
    expect(delta(published, 'fanout_delivery_latency_seconds_count{transport="sse"}')).toBeGreaterThan(0);
    expect(delta(published, 'fanout_delivery_latency_seconds_count{transport="ws"}')).toBeGreaterThan(0);

    // An unauthorized request counts as an auth error and as a 401.
    expect((await fetch(`${gw.url}/api/alerts`)).status).toBe(401);
    const errored = await scrape(gw.url);
    expect(delta(errored, 'fanout_errors_total{kind="auth"}')).toBe(1);
    expect(delta(errored, 'fanout_http_requests_total{status="401"}')).toBe(1);

    // Disconnect everyone.
    for (const f of feeds) f.close();
    for (const s of streams) s.close();
    for (const m of members) await leaveRoom(m);
    const gone = await waitFor('every connection to close', async () => {
      const m = await scrape(gw.url);
      return ['sse', 'poll', 'ws', 'dashboard'].every((t) => m.get(`fanout_connections{transport="${t}"}`) === 0) ? m : undefined;
    });
    expect(gone.get('fanout_realtime_channels')).toBe(0);
    expect(gone.get('fanout_presence_members')).toBe(0);
    expect(delta(gone, 'fanout_connections_opened_total{transport="dashboard"}')).toBe(2);
  });

  it('feeds the dashboard the same figures: Realtime rooms and process resources', async () => {
    const feed = await FeedClient.open(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${gw.keys.service_role}` });
    const members = [await joinRoom(gw, 'room:dash', 'ann'), await joinRoom(gw, 'room:dash', 'bob')];
    try {
      const sample = await feed.next<SampleData>('sample', (s) => s.point.v.channels === 2 && s.point.v.presence_members === 2);
      expect(sample.point.v.connections_ws).toBe(2);
      expect(sample.point.v.open_files).toBeGreaterThan(0);
      expect(sample.point.v.rss_bytes).toBeGreaterThan(10_000_000);
      const joins = feed.of<SampleData>('sample').map((s) => s.point.v.joins_per_second ?? 0);
      expect(Math.max(...joins)).toBeGreaterThan(0);
      expect(sample.busiest.find((b) => b.topic === 'realtime:room:dash')).toMatchObject({ subscribers: 2 });
    } finally {
      feed.close();
      for (const m of members) await leaveRoom(m);
    }
  });

  it('measures change-feed lag from a real comment to its postgres_changes delivery', async () => {
    const db = await createTestDatabase('fanout_monitor');
    const migrate = spawnSync(process.execPath, [FANOUT, 'migrate', '--database-url', db.url], { encoding: 'utf8', env: { ...process.env, FANOUT_JWT_SECRET: TEST_SECRET } });
    expect(migrate.status, migrate.stderr).toBe(0);
    const dbGw = await startGateway({ databaseUrl: db.url, dbStart: 'eager', monitorIntervalMs: 50 }, { sweepMs: 25 });
    try {
      await waitFor('the change feed', async () => (await fetch(`${dbGw.url}/readyz`)).status === 200, 20_000, 200);
      const before = await scrape(dbGw.url);
      expect(before.get('fanout_change_feed_lag_seconds_count')).toBe(0);
      const feed = await FeedClient.open(`${dbGw.url}/dashboard/feed`, { authorization: `Bearer ${dbGw.keys.service_role}` });
      const watcher = await watchComments(dbGw, 'p1');
      try {
        const author = await dbGw.userToken('u1');
        for (let i = 0; i < 3; i++) await postComment(dbGw, 'p1', author, `comment ${i}`);
        await waitFor('the changes to arrive', () => watcher.changes() === 3);
        const after = await scrape(dbGw.url);
        expect(after.get('fanout_change_feed_lag_seconds_count')).toBe(3);
        expect(after.get('fanout_change_feed_lag_last_seconds')).toBeGreaterThan(0);
        expect(after.get('fanout_change_feed_lag_last_seconds')).toBeLessThan(10);
        const sample = await feed.next<SampleData>('sample', (s) => s.point.v.change_feed_lag_last_seconds !== null);
        expect(sample.point.v.change_feed_lag_last_seconds).toBeGreaterThan(0);
      } finally {
        feed.close();
        await leaveRoom(watcher.member);
      }
    } finally {
      await dbGw.stop();
      await db.drop();
    }
  });

  it('reports event-loop lag over the last interval, whoever scrapes', async () => {
    // Block the loop for 300 ms from a sweep task that runs right after the monitor's own
    // (modules' sweep tasks run in registration order): a stall that starts just after a
    // sample must still be counted. (The machine is shared, so thresholds leave room for
    // ordinary scheduling delays.)
    let block = true;
    gw.gateway.onSweep(() => {
      if (!block) return;
      block = false;
      const until = Date.now() + 300;
      while (Date.now() < until);
    });
    const blocked = await waitFor('the lag to be seen', async () => {
      const s = await scrape(gw.url);
      return s.get('fanout_event_loop_lag_max_seconds')! >= 0.25 ? s : undefined;
    });
    expect(blocked.get('fanout_event_loop_lag_max_seconds')).toBeLessThan(2);
    // It is the last interval's figure, not a running maximum: it falls back once the loop runs freely.
    await waitFor('the lag to fall back', async () => (await scrape(gw.url)).get('fanout_event_loop_lag_max_seconds')! < 0.25, 20_000);
  });

  it('documents every fanout_ metric in docs/monitoring.md, and keeps the core names stable', async () => {
    const readme = readFileSync(new URL('../../docs/monitoring.md', import.meta.url), 'utf8');
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
    for (const name of ours) expect(section, `docs/monitoring.md "Monitoring" documents ${name}`).toContain(`\`${name}\``);
  });
});
