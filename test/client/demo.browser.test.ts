// The /demo page end to end in Chromium, two tabs of one browser: the seed's hybrid
// scenario. Tab 1 starts a content generation and its progress bar, fed over SSE by the
// client library, reaches 100 %; tab 2 sees the same generation through the ONE stream
// both tabs share; the collaboration panel shows both tabs present and a comment from
// one tab reaches the other (stored through the comments API, delivered by
// postgres_changes from the embedded database). Screenshots go to test-output/.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../sse/helpers.js';
import { launchBrowser, screenshot, type TestBrowser } from './browser.js';

let gw: TestGateway;
let browser: TestBrowser;

beforeAll(async () => {
  gw = await startGateway({ demoSession: 'on' }, { sweepMs: 50 });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await gw?.stop();
});

async function openDemo(project: string, problems: string[]): Promise<Page> {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => (m.type() === 'error' ? problems.push(m.text()) : undefined));
  await page.goto(`${gw.url}/demo?project=${project}`);
  return page;
}

const attr = (page: Page, selector: string, name: string): Promise<string | null> => page.locator(selector).getAttribute(name);

describe('/demo in two tabs', () => {
  it('runs the hybrid scenario: progress to 100 % over one shared stream, presence of both tabs, a comment across tabs', async () => {
    const problems: string[] = [];
    const project = `p${Date.now().toString(36)}`;
    const tab1 = await openDemo(project, problems);
    const tab2 = await openDemo(project, problems);

    // Collaboration: both tabs joined and see each other.
    for (const tab of [tab1, tab2]) {
      await expect.poll(() => attr(tab, '#collab-mode', 'data-mode'), { timeout: 15_000 }).toBe('realtime');
      await expect.poll(() => attr(tab, '#presence', 'data-count'), { timeout: 15_000 }).toBe('2');
    }
    expect(await attr(tab1, '#who', 'data-user')).toBe(await attr(tab2, '#who', 'data-user'));

    // Progress: one stream at the gateway for both tabs.
    for (const tab of [tab1, tab2]) await expect.poll(() => attr(tab, '#fanout-state', 'data-state'), { timeout: 15_000 }).toBe('open');
    const roles = [await attr(tab1, '#fanout-state', 'data-role'), await attr(tab2, '#fanout-state', 'data-role')].sort();
    expect(roles).toEqual(['follower', 'leader']);
    expect(gw.gateway.connections.count('sse')).toBe(1);

    await tab1.click('#generate');
    await expect.poll(() => attr(tab1, '#progress', 'data-status'), { timeout: 20_000 }).toBe('running');
    await tab1.screenshot({ path: screenshot('demo-tab1-running.png') });
    await expect.poll(() => attr(tab1, '#progress', 'data-status'), { timeout: 20_000 }).toBe('complete');
    expect(await attr(tab1, '#progress', 'data-progress')).toBe('100');
    // The other tab followed the same generation (userProgress, then progress() of the item).
    await expect.poll(() => tab2.locator('#jobs li[data-status="complete"]').count(), { timeout: 10_000 }).toBe(1);
    expect(await tab2.locator('#jobs li').first().getAttribute('data-progress')).toBe('100');
    expect(gw.gateway.connections.count('sse')).toBe(1);

    // Comments: sent in tab 2 (comments API), shown in tab 1 (postgres_changes).
    expect(await tab1.locator('#comments-via').textContent()).toContain('comments API');
    await tab2.fill('#comment-input', 'Looks great from tab 2');
    await tab2.press('#comment-input', 'Enter');
    await expect.poll(() => tab1.locator('#comments li').allTextContents(), { timeout: 10_000 }).toEqual([expect.stringContaining('Looks great from tab 2')]);
    await expect.poll(() => tab2.locator('#comments li').count(), { timeout: 10_000 }).toBe(1);

    await tab1.screenshot({ path: screenshot('demo-tab1.png') });
    await tab2.screenshot({ path: screenshot('demo-tab2.png') });
    expect(problems).toEqual([]);

    // Closing a tab removes it from the other's presence.
    await tab2.close();
    await expect.poll(() => attr(tab1, '#presence', 'data-count'), { timeout: 15_000 }).toBe('1');
    await tab1.close();
    await waitFor(() => gw.gateway.connections.count('sse') === 0 && gw.gateway.connections.count('ws') === 0, 'every connection to close');
  });

  it('degrades the collaboration panel when a tab cannot open a WebSocket, while its progress over SSE carries on', async () => {
    const problems: string[] = [];
    const project = `q${Date.now().toString(36)}`;
    const healthy = await openDemo(project, problems);
    const blocked = await browser.context.newPage();
    blocked.on('pageerror', (e) => problems.push(e.message));
    // Every WebSocket this tab opens to the gateway is closed at once, like a proxy without WebSocket support.
    await blocked.routeWebSocket(/\/realtime\/v1\/websocket/, (ws) => ws.close({ code: 1011, reason: 'blocked by the test' }));
    await blocked.goto(`${gw.url}/demo?project=${project}`);

    await expect.poll(() => attr(healthy, '#collab-mode', 'data-mode'), { timeout: 15_000 }).toBe('realtime');
    await expect.poll(() => attr(blocked, '#collab-mode', 'data-mode'), { timeout: 20_000 }).toBe('degraded');
    expect(await blocked.locator('#degraded').textContent()).toContain('presence');
    expect(await attr(healthy, '#presence', 'data-count')).toBe('1');

    // Comments still flow both ways: the degraded tab posts with the API and polls the list.
    await healthy.fill('#comment-input', 'from the connected tab');
    await healthy.press('#comment-input', 'Enter');
    await expect.poll(() => blocked.locator('#comments li').allTextContents(), { timeout: 15_000 }).toEqual([expect.stringContaining('from the connected tab')]);
    await blocked.fill('#comment-input', 'from the degraded tab');
    await blocked.press('#comment-input', 'Enter');
    await expect.poll(() => healthy.locator('#comments li').count(), { timeout: 10_000 }).toBe(2);

    // Progress over SSE is not affected by the WebSocket failure.
    await blocked.click('#generate');
    await expect.poll(() => attr(blocked, '#progress', 'data-status'), { timeout: 20_000 }).toBe('complete');
    await blocked.screenshot({ path: screenshot('demo-degraded.png') });
    expect(problems).toEqual([]);
    await blocked.close();
    await healthy.close();
  });
});
