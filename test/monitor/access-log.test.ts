import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { scrubUrl } from '../../src/server/access-log.js';
import { FeedClient, captureLogger, waitFor } from './helpers.js';
import { joinRoom, leaveRoom } from './traffic.js';

let gw: TestGateway;
let log: ReturnType<typeof captureLogger>;

beforeAll(async () => {
  log = captureLogger('trace');
  gw = await startGateway({}, { logger: log.logger });
});
afterAll(async () => {
  await gw.stop();
});

/** Sends a raw request line and headers, reads whatever comes back, and closes. */
function raw(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
    let out = '';
    socket.on('data', (c) => (out += c.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve(out));
    socket.write(request);
    setTimeout(() => socket.end(), 200);
  });
}

describe('access log', () => {
  it('logs one line per request with its id, method, path, status and duration', async () => {
    const res = await fetch(`${gw.url}/healthz?probe=1`);
    const reqId = res.headers.get('x-request-id');
    expect(reqId).toBeTruthy();
    const missing = await fetch(`${gw.url}/no/such/path`);
    expect(missing.status).toBe(404);
    const line = await waitFor('the access line', () => log.lines().find((l) => l.msg === 'request' && l.reqId === missing.headers.get('x-request-id')));
    expect(line).toMatchObject({ method: 'GET', path: '/no/such/path', status: 404, remote: '127.0.0.1', level: 30 });
    expect(typeof line.ms).toBe('number');
    // Probes log at debug so a scrape interval does not drown the log.
    expect(log.lines().find((l) => l.reqId === reqId)).toMatchObject({ path: '/healthz?probe=1', status: 200, level: 20 });
  });

  it('logs a client that left before any response as 499, and a stream it left as aborted', async () => {
    gw.gateway.router.on('GET', '/test/never-answers', () => undefined);
    const controller = new AbortController();
    const pending = fetch(`${gw.url}/test/never-answers`, { signal: controller.signal }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100)); // let the request reach the route
    controller.abort();
    await pending;
    const line = await waitFor('the 499 line', () => log.lines().find((l) => l.path === '/test/never-answers'));
    expect(line).toMatchObject({ status: 499, aborted: true });

    const viewer = await FeedClient.open(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${gw.keys.service_role}` });
    await viewer.next('hello');
    viewer.close();
    const stream = await waitFor('the stream line', () => log.lines().find((l) => l.msg === 'request' && l.path === '/dashboard/feed'));
    expect(stream).toMatchObject({ status: 200, aborted: true });
  });

  it('never writes a key or token from a header, the query or the path', async () => {
    const service = gw.keys.service_role;
    const user = await gw.userToken('alice');
    const opaque = 'opaque-credential-7f3a9c';
    const secrets = [service, user, gw.keys.anon, opaque];

    await fetch(`${gw.url}/api/alerts?apikey=${service}`);
    await fetch(`${gw.url}/api/alerts`, { headers: { authorization: `Bearer ${user}` } });
    await fetch(`${gw.url}/api/alerts`, { headers: { apikey: gw.keys.anon } });
    await fetch(`${gw.url}/api/alerts?access_token=${encodeURIComponent(user)}&x=1`);
    await fetch(`${gw.url}/nowhere?token=${opaque}&Api_Key=${opaque}&password=${opaque}&session=${opaque}`);
    await fetch(`${gw.url}/nowhere/${user}`);
    await fetch(`${gw.url}/nowhere?note=${service}`); // a JWT in an innocently named parameter
    await fetch(`${gw.url}/api/alerts`, { headers: { authorization: `Bearer ${opaque}` } }); // 401 path
    const viewer = await FeedClient.open(`${gw.url}/dashboard/feed?apikey=${service}`);
    await viewer.next('hello');
    viewer.close();
    // supabase-js puts the key in the WebSocket URL (`?apikey=`), and sends the user's token in its join.
    const member = await joinRoom(gw, 'room:logs', 'ann');
    await member.channel.send({ type: 'broadcast', event: 'cursor', payload: { token: opaque } });
    await leaveRoom(member);
    // A WebSocket upgrade with the key in the query, to a path with no endpoint.
    await raw(`GET /realtime/v1/nothing?apikey=${service}&vsn=1.0.0 HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    // A request Node rejects before any route (bad header) with a token in the target.
    await raw(`GET /api/alerts?apikey=${service} HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n`);

    await waitFor('the feed to be logged as closed', () => log.lines().some((l) => l.msg === 'request' && typeof l.path === 'string' && l.path.startsWith('/dashboard/feed')));
    const text = log.text();
    for (const secret of secrets) {
      expect(text).not.toContain(secret);
      // Not even a fragment: the signature is the part that matters.
      for (const part of secret.split('.')) if (part.length > 20) expect(text).not.toContain(part);
    }
    const paths = log.lines().filter((l) => l.msg === 'request' || l.msg === 'upgrade').map((l) => l.path);
    expect(paths).toContain('/api/alerts?apikey=[redacted]');
    expect(paths).toContain('/api/alerts?access_token=[redacted]&x=1');
    expect(paths).toContain('/nowhere?token=[redacted]&Api_Key=[redacted]&password=[redacted]&session=[redacted]');
    expect(paths).toContain('/nowhere/[redacted-jwt]');
    expect(paths).toContain('/nowhere?note=[redacted-jwt]');
    expect(paths).toContain('/dashboard/feed?apikey=[redacted]');
    expect(paths).toContain('/realtime/v1/nothing?apikey=[redacted]&vsn=1.0.0');
    expect(paths.some((p) => typeof p === 'string' && p.startsWith('/realtime/v1/websocket?apikey=[redacted]'))).toBe(true);
  });
});

describe('scrubUrl', () => {
  it('keeps what is harmless and replaces every credential', () => {
    expect(scrubUrl('/a/b?topic=x&topic=y')).toBe('/a/b?topic=x&topic=y');
    expect(scrubUrl('/a?apikey=abc&vsn=2.0.0')).toBe('/a?apikey=[redacted]&vsn=2.0.0');
    expect(scrubUrl('/a?%61pikey=abc')).toBe('/a?%61pikey=[redacted]');
    expect(scrubUrl('/a?flag&secret=1')).toBe('/a?flag&secret=[redacted]');
    expect(scrubUrl('/a?x=eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl')).toBe('/a?x=[redacted-jwt]');
  });
});
