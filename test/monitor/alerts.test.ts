import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import type { AlertEvent, ActiveAlert } from '../../src/monitor/alerts.js';
import type { WebhookPayload } from '../../src/monitor/webhook.js';
import { FeedClient, captureLogger, scrape, waitFor } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A local webhook receiver recording every POST; answers with `status()`. */
async function webhookReceiver(status: () => number = () => 204): Promise<{ url: string; received: { body: WebhookPayload; headers: Record<string, unknown> }[] }> {
  const received: { body: WebhookPayload; headers: Record<string, unknown> }[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ body: JSON.parse(body) as WebhookPayload, headers: req.headers });
      res.writeHead(status()).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

function alertsFile(doc: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-alerts-'));
  const file = join(dir, 'alerts.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

async function start(doc: unknown, logLevel = 'info'): Promise<{ gw: TestGateway; log: ReturnType<typeof captureLogger> }> {
  const log = captureLogger(logLevel);
  const gw = await startGateway({ alerts: alertsFile(doc), monitorIntervalMs: 50 }, { sweepMs: 25, logger: log.logger });
  cleanups.push(() => gw.stop());
  return { gw, log };
}

async function openViewer(gw: TestGateway): Promise<FeedClient> {
  const v = await FeedClient.open(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${gw.keys.service_role}` });
  cleanups.push(() => v.close());
  await v.next('hello');
  return v;
}

interface AlertsBody {
  active: ActiveAlert[];
  recent: AlertEvent[];
  rules: { name: string }[];
  webhook: boolean;
}

async function alerts(gw: TestGateway): Promise<AlertsBody> {
  const res = await fetch(`${gw.url}/api/alerts`, { headers: { authorization: `Bearer ${gw.keys.service_role}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as AlertsBody;
}

describe('alert rules on a live gateway', () => {
  it('fires when a threshold is crossed and resolves when it is uncrossed: logged, listed, streamed, counted and POSTed', async () => {
    const hook = await webhookReceiver();
    const { gw, log } = await start({
      rules: [{ name: 'many_viewers', signal: 'connections_dashboard', op: '>', threshold: 1, resolve: 1, for: '150ms', window: '50ms', severity: 'critical', description: 'two or more dashboards' }],
      webhook: { url: hook.url, headers: { 'x-hook-secret': 's3cret-header-value' } },
    });
    const watcher = await openViewer(gw);
    expect((await alerts(gw)).active).toEqual([]);

    // Cross: a second viewer.
    const second = await openViewer(gw);
    const fired = await watcher.next<{ event: AlertEvent; active: ActiveAlert[] }>('alert', (d) => d.event.status === 'firing');
    expect(fired.event).toMatchObject({ rule: 'many_viewers', severity: 'critical', signal: 'connections_dashboard', value: 2, threshold: 1 });
    expect(fired.active).toEqual([expect.objectContaining({ rule: 'many_viewers', state: 'firing' })]);
    const listed = await alerts(gw);
    expect(listed.active).toEqual([expect.objectContaining({ rule: 'many_viewers', state: 'firing', value: 2 })]);
    expect(listed.webhook).toBe(true);
    expect(listed.rules.map((r) => r.name)).toEqual(expect.arrayContaining(['many_viewers', 'sse_connections_high']));
    expect((await scrape(gw.url)).get('fanout_alerts_firing{rule="many_viewers",severity="critical"}')).toBe(1);
    await waitFor('the firing webhook', () => hook.received.length >= 1);
    expect(hook.received[0]!.body).toMatchObject({ source: 'fanout', instance: gw.url, status: 'firing', alert: { rule: 'many_viewers', value: 2 } });
    expect(hook.received[0]!.headers['x-hook-secret']).toBe('s3cret-header-value');
    expect(hook.received[0]!.headers['content-type']).toBe('application/json');

    // Uncross: the second viewer leaves.
    second.close();
    const resolved = await watcher.next<{ event: AlertEvent; active: ActiveAlert[] }>('alert', (d) => d.event.status === 'resolved');
    expect(resolved.event).toMatchObject({ rule: 'many_viewers', value: 1, firedAt: fired.event.firedAt });
    expect(resolved.active).toEqual([]);
    const after = await alerts(gw);
    expect(after.active).toEqual([]);
    expect(after.recent.map((e) => [e.rule, e.status])).toEqual([
      ['many_viewers', 'resolved'],
      ['many_viewers', 'firing'],
    ]);
    expect((await scrape(gw.url)).get('fanout_alerts_firing{rule="many_viewers",severity="critical"}')).toBe(0);
    await waitFor('the resolved webhook', () => hook.received.length >= 2);
    expect(hook.received.map((r) => r.body.status)).toEqual(['firing', 'resolved']);

    const lines = log.lines();
    expect(lines).toContainEqual(expect.objectContaining({ level: 40, alert: 'many_viewers', msg: 'alert firing: many_viewers: two or more dashboards', value: 2 }));
    expect(lines).toContainEqual(expect.objectContaining({ level: 30, alert: 'many_viewers', msg: 'alert resolved: many_viewers' }));
    expect(log.text()).not.toContain('s3cret-header-value');
  });

  it('does not fire on a blip shorter than `for`', async () => {
    const { gw } = await start({ defaults: false, rules: [{ name: 'viewers', signal: 'connections_dashboard', threshold: 0, for: '10s', window: '50ms' }] });
    const v = await openViewer(gw);
    await waitFor('the rule to be pending', async () => (await alerts(gw)).active.find((a) => a.state === 'pending'));
    v.close();
    await waitFor('the pending alert to clear', async () => (await alerts(gw)).active.length === 0);
    expect((await alerts(gw)).recent).toEqual([]);
  });

  it('evaluates rates over the window: a publish burst fires, silence resolves it', async () => {
    const { gw } = await start({ defaults: false, rules: [{ name: 'burst', signal: 'publishes_per_second', threshold: 200, resolve: 20, window: '300ms' }] });
    const publisher = setInterval(() => {
      for (let i = 0; i < 40; i++) void gw.gateway.hub.publish('t', 'e', { i });
    }, 20);
    try {
      const firing = await waitFor('the burst alert', async () => (await alerts(gw)).active.find((a) => a.rule === 'burst' && a.state === 'firing'));
      expect(firing.value).toBeGreaterThan(200);
    } finally {
      clearInterval(publisher);
    }
    const recent = await waitFor('resolution', async () => {
      const body = await alerts(gw);
      return body.active.length === 0 ? body.recent : undefined;
    });
    expect(recent[0]).toMatchObject({ rule: 'burst', status: 'resolved' });
    expect(recent[0]!.value).toBeLessThanOrEqual(20);
  });

  it('retries a failing webhook, then counts and logs the failure without the URL query or headers', async () => {
    const hook = await webhookReceiver(() => 500);
    const { gw, log } = await start({
      defaults: false,
      rules: [{ name: 'viewers', signal: 'connections_dashboard', threshold: 0, window: '50ms' }],
      webhook: { url: `${hook.url}?token=q-secret`, retries: 1, headers: { authorization: 'Bearer header-secret' } },
    });
    await openViewer(gw);
    await waitFor('the failure to be counted', async () => (await scrape(gw.url)).get('fanout_alert_webhook_failures_total') === 1);
    expect(hook.received).toHaveLength(2); // the first attempt and one retry
    const failure = log.lines().find((l) => l.msg === 'alert webhook delivery failed');
    expect(failure).toMatchObject({ rule: 'viewers', attempts: 2, problem: 'HTTP 500', target: hook.url });
    expect(log.text()).not.toContain('q-secret');
    expect(log.text()).not.toContain('header-secret');
  });

  it('keeps /api/alerts for the service_role key', async () => {
    const { gw } = await start({});
    expect((await fetch(`${gw.url}/api/alerts`)).status).toBe(401);
    expect((await fetch(`${gw.url}/api/alerts`, { headers: { apikey: gw.keys.anon } })).status).toBe(403);
  });
});
