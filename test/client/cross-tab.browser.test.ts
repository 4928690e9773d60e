// Cross-tab sharing in Chromium: three tabs of one origin and user load the client
// bundle the gateway serves (/client/fanout-client.js) and subscribe to the same content
// item. The gateway must see ONE stream; every tab receives every event; when the leader
// tab closes, another takes over and no tab loses or repeats an event. Run with Web
// Locks, and with the BroadcastChannel election browsers without Web Locks would use.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../sse/helpers.js';
import { launchBrowser, loadClientBundle, screenshot, type FanoutLib, type TestBrowser } from './browser.js';
import { range, sleep } from './helpers.js';

let gw: TestGateway;
let browser: TestBrowser;
let alice: string;

beforeAll(async () => {
  gw = await startGateway({}, { sweepMs: 50 });
  alice = await gw.userToken('alice');
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await gw?.stop();
});

interface TabView {
  role: string;
  state: string;
  transport: string;
  seqs: number[];
  ended: boolean;
  duplicates: number;
  catchUps: number;
  opens: number;
}

/** Opens a tab on the gateway's origin and starts a client there following one content item. */
async function openTab(contentId: string, election: 'locks' | 'broadcast', label: string): Promise<Page> {
  const page = await browser.context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`${gw.url}/`);
  await loadClientBundle(page);
  await page.evaluate(
    async ({ token, contentId, election, label }) => {
      const mod = (globalThis as unknown as { FanoutLib: FanoutLib }).FanoutLib;
      const client = new mod.FanoutClient({ apiKey: token, share: { election, heartbeatMs: 300, handoverMs: 150 }, timing: { backoffInitialMs: 100, backoffMaxMs: 1000 } });
      const seqs: number[] = [];
      let ended = false;
      const render = (): void => {
        const s = client.stats;
        document.body.innerHTML = `<pre style="font: 16px monospace; padding: 16px">${label}\nrole: ${s.role}   state: ${client.state}   transport: ${s.transport}\nevents: ${seqs.length} (last seq ${seqs.at(-1) ?? '-'})   duplicates dropped: ${s.duplicates}   gaps filled: ${s.catchUps}${ended ? '\nended (complete)' : ''}</pre>`;
      };
      client.progress(contentId, {
        onMessage: (m) => {
          seqs.push(m.seq);
          render();
        },
        onEnd: () => {
          ended = true;
          render();
        },
      });
      client.on('state', render);
      setInterval(render, 250);
      (globalThis as unknown as { view: () => TabView }).view = () => ({
        role: client.stats.role,
        state: client.state,
        transport: client.stats.transport,
        seqs,
        ended,
        duplicates: client.stats.duplicates,
        catchUps: client.stats.catchUps,
        opens: client.stats.opens,
      });
    },
    { token: alice, contentId, election, label },
  );
  expect(problems).toEqual([]);
  return page;
}

const view = (page: Page): Promise<TabView> => page.evaluate(() => (globalThis as unknown as { view: () => TabView }).view());

async function views(pages: Page[]): Promise<TabView[]> {
  return Promise.all(pages.map(view));
}

/** Polls `check` against every tab's view until it holds. */
async function until(pages: Page[], check: (v: TabView[]) => boolean, what: string, timeoutMs = 15_000): Promise<TabView[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await views(pages);
    if (check(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v.map((x) => ({ role: x.role, state: x.state, n: x.seqs.length })))}`);
    await sleep(50);
  }
}

for (const election of ['locks', 'broadcast'] as const) {
  describe(`three tabs share one connection (${election === 'locks' ? 'Web Locks' : 'BroadcastChannel'} election)`, () => {
    it('holds one stream for all tabs and hands over without loss when the leader tab closes', async () => {
      const { progress } = gw.gateway.service('content');
      const contentId = progress.create('alice').id;
      let published = 0;
      const publish = (event = 'progress'): void => {
        void progress.publish(contentId, event, { progress: Math.min(100, published) });
        published++;
      };

      const pages: Page[] = [];
      for (let i = 1; i <= 3; i++) pages.push(await openTab(contentId, election, `tab ${i} (${election})`));
      await until(pages, (v) => v.filter((x) => x.role === 'leader').length === 1 && v.every((x) => x.state === 'open'), 'one leader and every tab open');
      await waitFor(() => gw.gateway.connections.count('sse') === 1, 'one stream at the gateway');
      await sleep(500);
      expect(gw.gateway.connections.count('sse')).toBe(1);

      for (let i = 0; i < 20; i++) await publish();
      await until(pages, (v) => v.every((x) => x.seqs.length === 20), 'every tab to get 20 events');
      expect((await views(pages)).map((x) => x.seqs)).toEqual([range(1, 20), range(1, 20), range(1, 20)]);
      for (let i = 0; i < 3; i++) await pages[i]!.screenshot({ path: screenshot(`cross-tab-${election}-tab${i + 1}.png`) });

      // Keep publishing while the leader tab goes away.
      const leaderIndex = (await views(pages)).findIndex((x) => x.role === 'leader');
      const timer = setInterval(() => publish(), 20);
      await sleep(200);
      const closedAt = Date.now();
      await pages[leaderIndex]!.close();
      const rest = pages.filter((_, i) => i !== leaderIndex);
      await until(rest, (v) => v.some((x) => x.role === 'leader' && x.opens > 0) && v.every((x) => x.state === 'open'), 'a new leader with its stream open');
      console.log(`hand-over (${election}): a new leader's stream was open ${Date.now() - closedAt} ms after the leader tab closed`);
      await sleep(300);
      clearInterval(timer);
      await publish('complete');
      await until(rest, (v) => v.every((x) => x.ended), 'both remaining tabs to see the end');
      const after = await views(rest);
      for (const v of after) expect(v.seqs).toEqual(range(1, published));
      await waitFor(() => gw.gateway.connections.count('sse') <= 1, 'at most one stream');
      for (let i = 0; i < rest.length; i++) await rest[i]!.screenshot({ path: screenshot(`cross-tab-${election}-after-handover-${i + 1}.png`) });
      for (const p of rest) await p.close();
      await waitFor(() => gw.gateway.connections.count('sse') === 0, 'no stream once every tab is closed');
    });
  });
}
