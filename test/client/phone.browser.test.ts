// /demo and /dashboard on a 390 px wide phone screen in Chromium: nothing may scroll
// sideways, in any state the page reaches (waiting, working, failing). Also the states a
// first-time visitor meets: the demo without a session has its controls disabled and says
// why; the dashboard waits for a key without claiming to connect, keeps the key for a new
// tab until "Forget key", and no page asks for a file the gateway does not serve.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { createMigratedDatabase, type TestDatabase } from '../helpers/database.js';
import { launchBrowser, screenshot, type TestBrowser } from './browser.js';

const PHONE = { width: 390, height: 844 };

let db: TestDatabase;
let gw: TestGateway;
let browser: TestBrowser;

beforeAll(async () => {
  db = await createMigratedDatabase('fanout_phone');
  // The development secret (none given), as `npx fanout serve` runs: the demo hands out sessions.
  gw = await startGateway({ jwtSecret: undefined, databaseUrl: db.url, dbStart: 'eager' });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await db?.drop();
});

interface Watched {
  page: Page;
  /** Page errors, console errors and answers of 400 or more, as they happen. */
  problems: string[];
}

async function open(url: string): Promise<Watched> {
  const page = await browser.context.newPage();
  await page.setViewportSize(PHONE);
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => (m.type() === 'error' ? problems.push(`console: ${m.text()}`) : undefined));
  page.on('response', (r) => (r.status() >= 400 ? problems.push(`${r.status()} ${r.url()}`) : undefined));
  await page.goto(url);
  return { page, problems };
}

/** How far the page scrolls sideways, and the elements that stick out (for the failure message). */
async function overflow(page: Page): Promise<{ px: number; culprits: string[] }> {
  return page.evaluate(() => {
    const root = document.documentElement;
    const culprits = [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 0.5)
      .slice(0, 8)
      .map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${e.className && typeof e.className === 'string' ? `.${e.className.split(' ').join('.')}` : ''} (right edge ${Math.round(e.getBoundingClientRect().right)} px)`);
    return { px: root.scrollWidth - root.clientWidth, culprits };
  });
}

async function expectNoSidewaysScroll(page: Page, state: string): Promise<void> {
  const { px, culprits } = await overflow(page);
  expect(px, `${state}: the page is ${px} px wider than the 390 px screen; sticking out: ${culprits.join(', ')}`).toBe(0);
}

const attr = (page: Page, selector: string, name: string) => page.locator(selector).getAttribute(name);

describe('/demo at 390 px', () => {
  it('fits the screen while it connects, runs a generation and shows a comment', async () => {
    const { page, problems } = await open(`${gw.url}/demo?project=phone`);
    try {
      await expectNoSidewaysScroll(page, 'while connecting');
      await expect.poll(() => attr(page, '#collab-mode', 'data-mode'), { timeout: 20_000 }).toBe('realtime');
      expect(await page.locator('#generate').isEnabled()).toBe(true);
      expect(await page.locator('#comment-send').isEnabled()).toBe(true);
      await page.click('#generate');
      await expect.poll(() => attr(page, '#progress', 'data-status'), { timeout: 20_000 }).toBe('complete');
      await page.fill('#comment-input', 'a comment long enough to wrap on a phone screen, with a-very-long-unbroken-word-that-must-not-push-the-page-sideways');
      await page.click('#comment-send');
      await expect.poll(() => page.locator('#comments li').count(), { timeout: 15_000 }).toBe(1);
      await expectNoSidewaysScroll(page, 'after a generation and a comment');
      await page.screenshot({ path: screenshot('demo-390.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('without a session: controls disabled, the reason shown, still no sideways scroll', async () => {
    // A gateway with FANOUT_JWT_SECRET set hands out no demo sessions (--demo-session auto).
    const production = await startGateway({});
    const { page } = await open(`${production.url}/demo`);
    try {
      await expect.poll(() => page.locator('#problem').isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await page.locator('#problem').textContent()).toMatch(/^No demo session: demo sessions are only given to loopback clients/);
      expect(await page.locator('#generate').isDisabled()).toBe(true);
      expect(await page.locator('#comment-input').isDisabled()).toBe(true);
      expect(await page.locator('#comment-send').isDisabled()).toBe(true);
      expect(await page.locator('#collab-mode').textContent()).toBe('collaboration: unavailable');
      await expectNoSidewaysScroll(page, 'without a session');
    } finally {
      await page.close();
      await production.stop();
    }
  });
});

describe('/dashboard at 390 px', () => {
  it('waits for a key without claiming to connect, then fits the screen live', async () => {
    const { page, problems } = await open(`${gw.url}/dashboard`);
    try {
      await expect.poll(() => page.locator('#key-form').isVisible()).toBe(true);
      expect(await attr(page, '#status', 'data-state')).toBe('idle');
      expect(await page.locator('#status').textContent()).toBe('waiting for a key');
      await expectNoSidewaysScroll(page, 'asking for a key');
      await page.fill('#key-input', gw.keys.service_role);
      await page.click('#key-form button');
      await expect.poll(() => attr(page, '#status', 'data-state'), { timeout: 10_000 }).toBe('live');
      await expect.poll(async () => Number(await page.locator('body').getAttribute('data-samples')), { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
      await expectNoSidewaysScroll(page, 'live');
      await page.screenshot({ path: screenshot('dashboard-390.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('keeps the key for a new tab, and forgets it when asked', async () => {
    const first = await open(`${gw.url}/dashboard#key=${gw.keys.service_role}`);
    await expect.poll(() => attr(first.page, '#status', 'data-state'), { timeout: 10_000 }).toBe('live');
    const second = await open(`${gw.url}/dashboard`);
    try {
      await expect.poll(() => attr(second.page, '#status', 'data-state'), { timeout: 10_000 }).toBe('live');
      expect(await second.page.locator('#key-form').isVisible()).toBe(false);
      await second.page.click('#forget-key');
      await expect.poll(() => second.page.locator('#key-form').isVisible()).toBe(true);
      // The other tab follows: the key is gone from this browser.
      await expect.poll(() => first.page.locator('#key-form').isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await first.page.evaluate(() => localStorage.getItem('fanout.dashboard.key'))).toBeNull();
      expect([...first.problems, ...second.problems]).toEqual([]);
    } finally {
      await first.page.close();
      await second.page.close();
    }
  });
});
