// Opens /dashboard in headless Chromium, drives traffic at the gateway, and checks that
// the page shows it: tiles, chart legends and pixels, the busiest channels and alerts.
// Keeps a screenshot at test-output/dashboard.png.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { FeedClient } from './helpers.js';
import { createContent, joinRoom, leaveRoom, openProgressStream, publishProgress, type ProgressStream, type RealtimeMember } from './traffic.js';

const SCREENSHOT = new URL('../../test-output/dashboard.png', import.meta.url);

let gw: TestGateway;
let browser: Browser;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-alerts-'));
  const alerts = join(dir, 'alerts.json');
  writeFileSync(alerts, JSON.stringify({ rules: [{ name: 'sse_busy', signal: 'connections_sse', threshold: 3, resolve: 3, window: '200ms', severity: 'critical', description: 'more than 3 SSE streams' }] }));
  gw = await startGateway({ alerts, monitorIntervalMs: 200 }, { sweepMs: 50 });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
});

const tile = (page: Page, signal: string) => page.locator(`#tile-${signal}`).getAttribute('data-value');
const legend = (page: Page, chart: string, series: string) => page.locator(`#legend-${chart} [data-series="${series}"]`).getAttribute('data-value');

describe('/dashboard in Chromium', () => {
  it('asks for a key, rejects a wrong one, and connects with the service_role key', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${gw.url}/dashboard`);
      await expect.poll(() => page.locator('#key-form').isVisible()).toBe(true);
      await page.fill('#key-input', gw.keys.anon);
      await page.click('#key-form button');
      await expect.poll(() => page.locator('#key-error').textContent(), { timeout: 10_000 }).toContain('requires the service_role key');
      await page.fill('#key-input', gw.keys.service_role);
      await page.click('#key-form button');
      await expect.poll(() => page.locator('#status').getAttribute('data-state'), { timeout: 10_000 }).toBe('live');
      expect(await page.locator('#key-form').isVisible()).toBe(false);
    } finally {
      await page.close();
    }
  });

  it('shows live traffic, the busiest channels and alerts as they happen', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('console', (msg) => (msg.type() === 'error' ? problems.push(msg.text()) : undefined));
    const streams: ProgressStream[] = [];
    const members: RealtimeMember[] = [];
    const extraViewers: FeedClient[] = [];
    let publishing = false;
    let publisher: Promise<void> | undefined;
    try {
      await page.goto(`${gw.url}/dashboard#key=${gw.keys.service_role}`);
      await expect.poll(() => page.locator('#status').getAttribute('data-state'), { timeout: 10_000 }).toBe('live');
      // The key left the address bar (it stays in the tab's session storage).
      expect(new URL(page.url()).hash).toBe('');
      await expect.poll(async () => Number(await page.locator('body').getAttribute('data-samples')), { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
      expect(await tile(page, 'connections_sse')).toBe('0');
      expect(await page.locator('#alerts-none').isVisible()).toBe(true);
      const quietChart = await page.locator('#chart-messages').evaluate((c: HTMLCanvasElement) => c.toDataURL());

      // Traffic: five EventSource streams on one content item, two supabase-js clients in a
      // room with presence, two more dashboard viewers, and a backend publishing progress.
      const alice = await gw.userToken('alice');
      const contentId = await createContent(gw, 'alice');
      for (let i = 0; i < 5; i++) streams.push(await openProgressStream(gw, contentId, alice));
      for (const user of ['ann', 'bob']) members.push(await joinRoom(gw, 'room:browser', user));
      for (let i = 0; i < 2; i++) extraViewers.push(await FeedClient.open(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${gw.keys.service_role}` }));
      publishing = true;
      publisher = (async () => {
        for (let i = 0; publishing; i++) await publishProgress(gw, contentId, i % 100);
      })();

      await expect.poll(() => tile(page, 'connections_sse'), { timeout: 10_000 }).toBe('5');
      await expect.poll(async () => Number(await tile(page, 'messages_out_per_second')), { timeout: 10_000 }).toBeGreaterThan(5);
      await expect.poll(async () => Number(await tile(page, 'messages_in_per_second')), { timeout: 10_000 }).toBeGreaterThan(0);
      await expect.poll(() => tile(page, 'connections_ws'), { timeout: 10_000 }).toBe('2');
      await expect.poll(() => tile(page, 'channels'), { timeout: 10_000 }).toBe('2');
      await expect.poll(() => tile(page, 'presence_members'), { timeout: 10_000 }).toBe('2');
      await expect.poll(() => page.locator('#tile-connections_sse').textContent()).toBe('5');
      await expect.poll(async () => Number(await legend(page, 'connections', 'connections_dashboard')), { timeout: 10_000 }).toBe(3);
      await expect.poll(async () => Number(await legend(page, 'latency', 'delivery_latency_p99_seconds')), { timeout: 10_000 }).toBeGreaterThan(0);
      await expect.poll(async () => Number(await legend(page, 'memory', 'rss_bytes')), { timeout: 10_000 }).toBeGreaterThan(10);
      expect(await legend(page, 'lag', 'event_loop_lag_p99_seconds')).not.toBe('');
      const busiest = page.locator('#busiest tbody tr').first();
      await expect.poll(() => busiest.getAttribute('data-topic'), { timeout: 10_000 }).toBe(`content:${contentId}`);
      expect(await busiest.locator('td').nth(1).textContent()).toBe('5');
      // The alert fires on the page: active table, badge, recent list.
      await expect.poll(() => page.locator('#alerts-active tr[data-rule="sse_busy"]').getAttribute('data-state'), { timeout: 10_000 }).toBe('firing');
      expect(await page.locator('#alerts-count').textContent()).toBe('1');
      expect(await page.locator('#alerts-recent li.firing[data-rule="sse_busy"]').count()).toBe(1);
      // The charts were redrawn with the traffic.
      expect(Number(await page.locator('#chart-messages').getAttribute('data-points'))).toBeGreaterThan(2);
      expect(await page.locator('#chart-messages').evaluate((c: HTMLCanvasElement) => c.toDataURL())).not.toBe(quietChart);

      mkdirSync(new URL('.', SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT.pathname, fullPage: true });

      // Traffic stops: the alert resolves on the page and the tiles fall back.
      publishing = false;
      await publisher;
      for (const s of streams.splice(0)) s.close();
      for (const m of members.splice(0)) await leaveRoom(m);
      await expect.poll(() => tile(page, 'connections_sse'), { timeout: 10_000 }).toBe('0');
      await expect.poll(() => tile(page, 'connections_ws'), { timeout: 10_000 }).toBe('0');
      await expect.poll(() => page.locator('#alerts-active tr[data-rule="sse_busy"]').count(), { timeout: 10_000 }).toBe(0);
      expect(await page.locator('#alerts-recent li.resolved[data-rule="sse_busy"]').count()).toBe(1);
      await expect.poll(async () => Number(await tile(page, 'messages_out_per_second')), { timeout: 10_000 }).toBe(0);
      expect(problems).toEqual([]);
    } finally {
      publishing = false;
      await publisher;
      for (const s of streams) s.close();
      for (const m of members) await leaveRoom(m);
      for (const v of extraViewers) v.close();
      await page.close();
    }
  });
});
