// What the gateway serves for browsers: the client bundles (built from the sources on
// first request), the /demo page with its Content-Security-Policy, and /demo/session —
// the development-only key dispenser and each of its switches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FanoutLib } from './browser.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { http, waitFor } from '../sse/helpers.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ demoSession: 'on' }, { sweepMs: 50 });
});
afterAll(() => gw.stop());

describe('browser assets', () => {
  it('serves the client library as one ES module that works on its own (here: in Node)', async () => {
    const res = await fetch(`${gw.url}/client/fanout-client.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const source = await res.text();
    expect(source).toContain('FanoutClient');
    expect(source).not.toMatch(/^import\s/m); // self-contained: no imports left to resolve
    const lib = (await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`)) as FanoutLib;
    const token = await gw.userToken('alice');
    const client = new lib.FanoutClient({ url: gw.url, apiKey: token });
    const { progress } = gw.gateway.service('content');
    const id = progress.create('alice').id;
    const seqs: number[] = [];
    client.progress(id, { onMessage: (m) => void seqs.push(m.seq) });
    await progress.publish(id, 'progress', { progress: 50 });
    await progress.publish(id, 'complete');
    await waitFor(() => seqs.length === 2, 'both events through the bundled client');
    expect(seqs).toEqual([1, 2]);
    client.close();
  });

  it('serves the collaboration bundle, the demo script and page, and 404s anything else', async () => {
    for (const path of ['/client/fanout-collaboration.js', '/demo/demo.js']) {
      const res = await fetch(`${gw.url}${path}`);
      expect(res.status, path).toBe(200);
      expect((await res.text()).length).toBeGreaterThan(10_000);
    }
    const page = await fetch(`${gw.url}/demo`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('/demo/demo.js');
    const missing = await http('GET', `${gw.url}/client/nope.js`);
    expect(missing.status).toBe(404);
    expect(missing.json.error?.code).toBe('not_found');
  });
});

describe('/demo/session', () => {
  it('hands out a user token and the anon key when enabled, for a named or generated user', async () => {
    const named = await http('GET', `${gw.url}/demo/session?user=carol`);
    expect(named.status).toBe(200);
    const body = named.json as { userId: string; anonKey: string; accessToken: string; expiresAt: number };
    expect(body.userId).toBe('carol');
    await expect(gw.gateway.auth.verify(body.accessToken)).resolves.toMatchObject({ sub: 'carol', role: 'authenticated' });
    await expect(gw.gateway.auth.verify(body.anonKey)).resolves.toMatchObject({ role: 'anon' });
    expect(body.expiresAt).toBeGreaterThan(Date.now() / 1000 + 3000);
    const generated = await http('GET', `${gw.url}/demo/session`);
    expect((generated.json as { userId: string }).userId).toMatch(/^demo-[a-z0-9]+$/);
    const bad = await http('GET', `${gw.url}/demo/session?user=${encodeURIComponent('a b')}`);
    expect(bad.status).toBe(400);
    expect(bad.json.error?.code).toBe('invalid_user');
  });

  it('answers only the gateway\'s own pages: a page of another origin is refused 403, whatever CORS allows', async () => {
    const own = await http('GET', `${gw.url}/demo/session?user=erin`, { headers: { origin: gw.url } });
    expect(own.status).toBe(200);
    for (const origin of ['https://evil.example', 'null', 'http://127.0.0.1:1']) {
      const res = await http('GET', `${gw.url}/demo/session?user=erin`, { headers: { origin } });
      expect(res.status, origin).toBe(403);
      expect(res.json.error?.code).toBe('cross_origin_demo_session');
      expect(JSON.stringify(res.json)).not.toMatch(/accessToken|anonKey/);
    }
  });

  it('is off by default on a gateway with a configured secret, and when turned off', async () => {
    for (const demoSession of ['auto', 'off'] as const) {
      const other = await startGateway({ demoSession }); // the test helper sets FANOUT_JWT_SECRET
      try {
        const res = await http('GET', `${other.url}/demo/session`);
        expect(res.status, demoSession).toBe(404);
        expect(res.json.error?.code).toBe('demo_session_disabled');
      } finally {
        await other.stop();
      }
    }
  });

  it('is on by default for loopback clients of a gateway on the generated development secret', async () => {
    const dev = await startGateway({ jwtSecret: undefined });
    try {
      expect(dev.gateway.secret.origin).toBe('file');
      const res = await http('GET', `${dev.url}/demo/session?user=dave`);
      expect(res.status).toBe(200);
      await expect(dev.gateway.auth.verify((res.json as { accessToken: string }).accessToken)).resolves.toMatchObject({ sub: 'dave' });
    } finally {
      await dev.stop();
    }
  });
});
