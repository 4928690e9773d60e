// CORS over raw HTTP: what a browser on another origin is told by the gateway for streams,
// long-polls and the REST APIs, with any origin allowed (the default), a list of origins,
// and CORS off. The browser's own enforcement is checked in test/client/cors.browser.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, ConfigError } from '../../src/core/config.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const APP = 'https://app.example.com';

async function preflight(url: string, origin: string, method = 'POST', headers = 'authorization, apikey, content-type, x-client-info'): Promise<Response> {
  return fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } });
}

/** The first chunk of an SSE response, then the connection is dropped. */
async function openStream(url: string, headers: Record<string, string>): Promise<Response> {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
  controller.abort();
  return res;
}

describe('CORS with any origin allowed (the default)', () => {
  let gw: TestGateway;
  let contentId: string;
  beforeAll(async () => {
    gw = await startGateway();
    const created = await fetch(`${gw.url}/api/content`, { method: 'POST', headers: { authorization: `Bearer ${gw.keys.service_role}`, 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'cors-user', simulate: false }) });
    contentId = ((await created.json()) as { contentId: string }).contentId;
  });
  afterAll(() => gw?.stop());

  it('answers a preflight 204 with the methods and the headers the page asked for', async () => {
    const res = await preflight(`${gw.url}/api/content/${contentId}/progress`, APP);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, PATCH, DELETE, OPTIONS');
    expect(res.headers.get('access-control-allow-headers')).toBe('authorization, apikey, content-type, x-client-info');
    expect(res.headers.get('access-control-max-age')).toBe('86400');
    expect(await res.text()).toBe('');
  });

  it('lets a stream, a long-poll, a publish and an error be read by the page, with Retry-After exposed', async () => {
    const stream = await openStream(`${gw.url}/api/content/${contentId}/progress?apikey=${gw.keys.service_role}`, { origin: APP });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.headers.get('access-control-allow-origin')).toBe('*');
    expect(stream.headers.get('access-control-expose-headers')).toBe('retry-after, x-request-id, idempotent-replayed');

    const poll = await fetch(`${gw.url}/api/content/${contentId}/progress/poll?wait=0&apikey=${gw.keys.service_role}`, { headers: { origin: APP } });
    expect(poll.status).toBe(200);
    expect(poll.headers.get('access-control-allow-origin')).toBe('*');

    const publish = await fetch(`${gw.url}/api/content/${contentId}/progress`, { method: 'POST', headers: { origin: APP, authorization: `Bearer ${gw.keys.service_role}`, 'content-type': 'application/json' }, body: '{"progress": 10}' });
    expect(publish.status).toBe(200);
    expect(publish.headers.get('access-control-allow-origin')).toBe('*');

    const refused = await fetch(`${gw.url}/api/content/${contentId}/progress`, { headers: { origin: APP } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBeTruthy();
  });

  it('adds nothing to a request without Origin (not a browser page on another origin)', async () => {
    const res = await fetch(`${gw.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses a preflight whose header list is not header names, and goes on serving', async () => {
    const res = await preflight(`${gw.url}/api/content`, APP, 'POST', 'authorization, x-evil header');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'bad_preflight', message: expect.stringContaining('Access-Control-Request-Headers') });
    expect((await preflight(`${gw.url}/api/content`, APP)).status).toBe(204);
  });

  it('says yes to Chrome\u2019s Private Network Access question', async () => {
    const res = await fetch(`${gw.url}/api/content`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'GET', 'access-control-request-private-network': 'true' } });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-private-network')).toBe('true');
  });
});

describe('CORS with a list of origins', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ corsOrigins: `${APP}, http://localhost:3000` });
  });
  afterAll(() => gw?.stop());

  it('echoes a listed origin, with Vary: Origin', async () => {
    for (const origin of [APP, 'http://localhost:3000']) {
      const res = await preflight(`${gw.url}/api/content`, origin);
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(origin);
      expect(res.headers.get('vary')).toBe('Origin');
    }
    const stream = await openStream(`${gw.url}/v1/stream?topic=content:none&apikey=${gw.keys.service_role}`, { origin: APP });
    expect(stream.headers.get('access-control-allow-origin')).toBe(APP);
  });

  it('refuses a preflight from any other origin with 403 naming it, and serves a simple request without CORS headers', async () => {
    const res = await preflight(`${gw.url}/api/content`, 'https://evil.example');
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('cors_origin_not_allowed');
    expect(body.error.message).toContain('https://evil.example');
    expect(body.error.message).toContain('--cors-origins');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();

    const simple = await fetch(`${gw.url}/healthz`, { headers: { origin: 'https://evil.example' } });
    expect(simple.status).toBe(200);
    expect(simple.headers.get('access-control-allow-origin')).toBeNull();
    // A listed origin is still served after the refusal.
    expect((await preflight(`${gw.url}/api/content`, APP)).status).toBe(204);
  });
});

describe('CORS off', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ corsOrigins: 'off' });
  });
  afterAll(() => gw?.stop());

  it('sends no CORS header and leaves OPTIONS to the router (405)', async () => {
    const res = await preflight(`${gw.url}/healthz`, APP);
    expect(res.status).toBe(405);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('method_not_allowed');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const health = await fetch(`${gw.url}/healthz`, { headers: { origin: APP } });
    expect(health.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('--cors-origins validation', () => {
  it.each([
    ['https://app.example.com/', 'use "https://app.example.com"'],
    ['https://APP.example.com', 'use "https://app.example.com"'],
    ['app.example.com', 'is not an origin'],
    ['ftp://files.example.com', 'is not an http(s) origin'],
    ['https://a.example.com,', 'is not an origin'],
  ])('stops start-up on %j, naming the variable and saying what is wrong', (value, expected) => {
    let error: unknown;
    try {
      loadConfig({}, { FANOUT_CORS_ORIGINS: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(String((error as Error).message)).toContain('FANOUT_CORS_ORIGINS');
    expect(String((error as Error).message)).toContain(expected);
  });

  it('accepts *, off and exact origins', () => {
    for (const value of ['*', 'off', 'https://app.example.com', 'http://localhost:3000,https://app.example.com']) {
      expect(loadConfig({}, { FANOUT_CORS_ORIGINS: value }).corsOrigins).toBe(value);
    }
  });
});
