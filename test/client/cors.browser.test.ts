// CORS as a browser enforces it: a page in Chromium on another origin than the gateway's
// starts a content generation with fetch (a preflighted POST with Authorization), follows
// it with EventSource to `complete`, and reads an error body and its exposed headers. A
// gateway whose --cors-origins does not list the page's origin is refused by the browser
// itself, for the POST and for the stream.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { launchBrowser, type TestBrowser } from './browser.js';

let open: TestGateway;
let listed: TestGateway;
let pageServer: Server;
let pageOrigin: string;
let browser: TestBrowser;
let page: Page;

beforeAll(async () => {
  open = await startGateway();
  listed = await startGateway({ corsOrigins: 'https://app.example.com' });
  // The app's own origin: another port is another origin.
  pageServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title>'));
  await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
  browser = await launchBrowser();
  page = await browser.context.newPage();
  await page.goto(pageOrigin);
});
afterAll(async () => {
  await browser?.close();
  pageServer?.close();
  await open?.stop();
  await listed?.stop();
});

interface PageRun {
  created: number | string;
  events: number[] | string;
  errorStatus: number | string;
  requestId: string | null;
}

/** In the page: create a simulated generation, stream it to `complete`, then provoke a 401. */
function runInPage(gateway: string, token: string): Promise<PageRun> {
  return page.evaluate(
    async ({ gateway, token }) => {
      const run: PageRun = { created: 'not run', events: 'not run', errorStatus: 'not run', requestId: null };
      let contentId: string;
      try {
        const res = await fetch(`${gateway}/api/content`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ steps: 4, intervalMs: 250 }) });
        run.created = res.status;
        contentId = ((await res.json()) as { contentId: string }).contentId;
      } catch (err) {
        run.created = `fetch failed: ${(err as Error).message}`;
        contentId = 'none';
      }
      run.events = await new Promise<number[] | string>((resolve) => {
        const got: number[] = [];
        const source = new EventSource(`${gateway}/api/content/${contentId}/progress?access_token=${token}`);
        const timer = setTimeout(() => resolve(`timed out after ${JSON.stringify(got)}`), 10_000);
        source.addEventListener('progress', (e) => got.push((JSON.parse((e as MessageEvent<string>).data) as { progress: number }).progress));
        source.addEventListener('complete', () => {
          clearTimeout(timer);
          source.close();
          resolve(got);
        });
        source.onerror = () => {
          if (source.readyState !== EventSource.CLOSED) return; // a retry, not a refusal
          clearTimeout(timer);
          resolve('stream refused');
        };
      });
      try {
        const res = await fetch(`${gateway}/api/content/${contentId}/progress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"progress": 1}' });
        run.errorStatus = res.status;
        run.requestId = res.headers.get('x-request-id');
      } catch (err) {
        run.errorStatus = `fetch failed: ${(err as Error).message}`;
      }
      return run;
    },
    { gateway, token },
  );
}

describe('a page on another origin', () => {
  it('creates and streams a generation through a gateway that allows any origin, and reads its errors', async () => {
    const run = await runInPage(open.url, await open.userToken('cors-browser-user'));
    expect(run.created).toBe(201);
    expect(Array.isArray(run.events), String(run.events)).toBe(true);
    expect((run.events as number[]).at(-1)).toBe(100);
    expect(run.errorStatus).toBe(401);
    expect(run.requestId).toMatch(/^[0-9a-z]+$/);
  });

  it('is refused by the browser when the gateway lists other origins only, and the gateway carries on', async () => {
    const run = await runInPage(listed.url, await listed.userToken('cors-browser-user'));
    expect(run.created).toMatch(/^fetch failed/);
    expect(run.events).toBe('stream refused');
    expect(run.errorStatus).toMatch(/^fetch failed/);
    expect((await fetch(`${listed.url}/healthz`)).status).toBe(200);
  });
});
