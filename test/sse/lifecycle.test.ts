// Connection hygiene: the wire basics (headers, retry, heartbeats from the shared sweep),
// token expiry, caps, slow consumers, drain, and that every close path frees the hub
// subscription and the connection slot.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { http, openClient, rawGet, seqs, waitFor, type Client } from './helpers.js';

const counter = async (gw: TestGateway, name: string, labels: string): Promise<number> => {
  const text = await gw.gateway.metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
};

describe('wire basics and the shared sweep', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ heartbeatMs: 200, retryMs: 1234 }, { sweepMs: 50 });
  });
  afterAll(() => gw.stop());

  it('sends SSE headers, retry: first, and comment heartbeats at the configured interval', async () => {
    const token = await gw.userToken('alice');
    const id = gw.gateway.service('content').progress.create('alice').id;
    const s = await rawGet(`${gw.url}/api/content/${id}/progress`, { authorization: `Bearer ${token}` });
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(s.headers['cache-control']).toBe('no-cache, no-transform');
    expect(s.headers['x-accel-buffering']).toBe('no');
    await new Promise((r) => setTimeout(r, 1300));
    s.destroy();
    const frames = s.frames();
    expect(frames[0]!.fields).toEqual({ retry: '1234' });
    expect(frames[1]!.fields.event).toBe('ready');
    const beats = frames.filter((f) => f.comments.includes('ping')).length;
    expect(beats).toBeGreaterThanOrEqual(3);
    expect(beats).toBeLessThanOrEqual(8);
  });

  it('closes a stream whose token expired, with a reason event', async () => {
    // `exp` has one-second resolution: 3 s leaves the stream time to open on a busy machine.
    const token = await gw.userToken('alice', 3);
    const c = openClient(`${gw.url}/api/content/progress`, token);
    await waitFor(() => c.of('ready').length === 1, 'ready');
    await waitFor(() => c.of('error').length === 1, 'the token_expired event', 10_000);
    c.close();
    expect(c.of('error')[0]!.data.code).toBe('token_expired');
    await waitFor(() => gw.gateway.connections.size === 0, 'the connection to be freed');
    expect(gw.gateway.hub.subscriberCount('user:alice')).toBe(0);
  });
});

describe('caps', () => {
  let gw: TestGateway;
  const clients: Client[] = [];
  beforeAll(async () => {
    gw = await startGateway({ maxConnections: 4, maxConnectionsPerUser: 2 });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await gw.stop();
  });

  it('answers 429 at the per-user cap and 503 at the total cap, with Retry-After and JSON, and frees slots on close', async () => {
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((u) => gw.userToken(u)));
    const open = async (token: string) => {
      const c = openClient(`${gw.url}/api/content/progress`, token);
      clients.push(c);
      await waitFor(() => c.of('ready').length === 1, 'ready');
      return c;
    };
    const a1 = await open(alice!);
    await open(alice!);
    const third = await http('GET', `${gw.url}/api/content/progress`, { token: alice });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(third.json.error!.code).toBe('too_many_user_connections');

    await open(bob!);
    await open(bob!);
    const full = await http('GET', `${gw.url}/api/content/progress`, { token: carol });
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(full.json.error!.code).toBe('too_many_connections');
    expect(await counter(gw, 'fanout_connections_rejected_total', 'transport="sse",reason="too_many_connections"')).toBe(1);
    expect(await counter(gw, 'fanout_connections_rejected_total', 'transport="sse",reason="too_many_user_connections"')).toBe(1);

    a1.close();
    await waitFor(() => gw.gateway.connections.size === 3, 'the closed stream to free its slot');
    await open(alice!);
    expect(gw.gateway.connections.countForUser('user:alice')).toBe(2);
  });
});

describe('caps for a service relaying many users', () => {
  it('counts a service_role stream against the user it reads, not against one shared key', async () => {
    const gw = await startGateway({ maxConnectionsPerUser: 2 });
    const service = gw.keys.service_role;
    const streams = await Promise.all(['u1', 'u2', 'u3', 'u1'].map((u) => rawGet(`${gw.url}/api/content/progress?userId=${u}`, { authorization: `Bearer ${service}` })));
    expect(streams.map((s) => s.status)).toEqual([200, 200, 200, 200]);
    const third = await http('GET', `${gw.url}/api/content/progress?userId=u1`, { token: service });
    expect(third.status).toBe(429);
    expect(third.json.error!.message).toMatch(/u1/);
    for (const s of streams) s.destroy();
    await gw.stop();
  });
});

describe('slow consumer', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ slowConsumerBytes: 64 * 1024 });
  });
  afterAll(() => gw.stop());

  it('disconnects a client that stops reading, with a reason event, without disturbing others', async () => {
    const token = await gw.userToken('alice');
    const { progress } = gw.gateway.service('content');
    const id = progress.create('alice').id;
    const healthy = openClient(`${gw.url}/api/content/${id}/progress`, token);

    const url = new URL(gw.url);
    const slow: Socket = connect(Number(url.port), url.hostname);
    let received = '';
    slow.setEncoding('utf8');
    slow.on('data', (chunk: string) => (received += chunk));
    const slowEnded = new Promise<void>((resolve) => slow.on('close', () => resolve()));
    slow.write(`GET /api/content/${id}/progress HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    await waitFor(() => received.includes('event: ready') && healthy.of('ready').length === 1, 'both streams ready');
    slow.pause(); // stops reading: the kernel buffers fill, then the server's

    // About 4 MB/s: far more than a client that does not read can take, easy for one that does.
    const blob = 'x'.repeat(20_000);
    let published = 0;
    while ((await counter(gw, 'fanout_slow_consumer_disconnects_total', 'transport="sse"')) === 0) {
      for (let i = 0; i < 2; i++, published++) await progress.publish(id, 'progress', { progress: published % 100, blob });
      await new Promise((r) => setTimeout(r, 10));
      if (published > 5000) throw new Error('the slow consumer was never disconnected');
    }
    expect(healthy.opens).toBe(1);
    // Unsubscribed at once; the socket gets CLOSE_GRACE_MS to take the reason event.
    expect(gw.gateway.hub.subscriberCount(`content:${id}`)).toBe(1);
    slow.resume();
    await slowEnded;
    const tail = received.slice(-2000);
    expect(tail.includes('event: error\ndata: {"code":"slow_consumer"'), `the stream ends with the reason event; its tail was ${JSON.stringify(tail.slice(-300))}`).toBe(true);
    await waitFor(() => gw.gateway.connections.size === 1, 'the slow stream to leave the connection manager');
    // The healthy client got everything, in order.
    await waitFor(() => healthy.of('progress').length === published, 'the healthy client to receive every event', 20_000);
    expect(seqs(healthy.of('progress'))).toEqual(Array.from({ length: published }, (_, i) => i + 1));
    healthy.close();
  });
});

describe('drain', () => {
  it('tells every stream to reconnect elsewhere, answers waiting polls 503, and stops within the bound', async () => {
    const gw = await startGateway({ drainTimeoutMs: 8000, retryMs: 1000 });
    const token = await gw.userToken('alice');
    const { progress } = gw.gateway.service('content');
    const id = progress.create('alice').id;
    const m = await progress.publish(id, 'progress', { progress: 1 });
    const clients = [openClient(`${gw.url}/api/content/${id}/progress`, token), openClient(`${gw.url}/v1/stream?topic=user:alice&topic=content:${id}`, token)];
    const raw = await rawGet(`${gw.url}/api/content/progress`, { authorization: `Bearer ${token}` });
    await waitFor(() => clients.every((c) => c.of('ready').length === 1), 'streams ready');
    const poll = http('GET', `${gw.url}/api/content/${id}/progress/poll?after=${m.epoch}:1&wait=30`, { token });
    await waitFor(() => gw.gateway.connections.size === 4, 'four connections');

    const started = Date.now();
    await gw.stop();
    const took = Date.now() - started;
    expect(took).toBeLessThan(5000);
    expect(gw.gateway.connections.size).toBe(0);

    for (const c of clients) {
      await waitFor(() => c.of('shutdown').length === 1, 'the shutdown event');
      expect(c.of('shutdown')[0]!.data.code).toBe('shutdown');
      c.close();
    }
    await raw.ended;
    const last = raw.frames().at(-1)!;
    expect(last.fields.event).toBe('shutdown');
    expect(Number(last.fields.retry)).toBeGreaterThanOrEqual(500);
    const answered = await poll;
    expect(answered.status).toBe(503);
    expect(answered.json.error!.code).toBe('draining');
    expect(answered.headers.get('retry-after')).toBe('1');
    await expect(fetch(`${gw.url}/healthz`)).rejects.toThrow();
  });
});

describe('every close path frees the subscription and the slot', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({}, { sweepMs: 50 });
  });
  afterAll(() => gw.stop());

  it('client close, server end after complete, and resume all leave nothing behind', async () => {
    const token = await gw.userToken('alice');
    const { progress } = gw.gateway.service('content');
    const id = progress.create('alice').id;
    const topic = `content:${id}`;
    const opened = await counter(gw, 'fanout_connections_opened_total', 'transport="sse"');

    const a = openClient(`${gw.url}/api/content/${id}/progress`, token);
    const b = openClient(`${gw.url}/v1/stream?topic=${topic}&topic=user:alice`, token);
    await waitFor(() => a.of('ready').length === 1 && b.of('ready').length === 1, 'ready');
    expect(gw.gateway.hub.subscriberCount(topic)).toBe(2);
    expect(gw.gateway.connections.count('sse')).toBe(2);
    b.close();
    await waitFor(() => gw.gateway.connections.count('sse') === 1, 'the closed client to be freed');
    expect(gw.gateway.hub.subscriberCount('user:alice')).toBe(0);

    await progress.publish(id, 'complete', {});
    await waitFor(() => a.es.readyState === a.es.CLOSED, 'the content stream to end and the client to stop');
    a.close();
    await waitFor(() => gw.gateway.connections.size === 0, 'every connection freed');
    expect(gw.gateway.hub.subscriberCount(topic)).toBe(0);
    expect(await counter(gw, 'fanout_connections_opened_total', 'transport="sse"')).toBe(opened + 2);
    expect(await counter(gw, 'fanout_messages_total', 'transport="sse",direction="out"')).toBeGreaterThanOrEqual(1);
  });
});
