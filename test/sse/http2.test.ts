// HTTP/2 over TLS: many progress streams multiplexed on one connection (browsers allow
// only 6 HTTP/1.1 connections per origin), with a certificate generated for the test.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { parseFrames, waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'fanout-tls-'));
let gw: TestGateway;
let session: ClientHttp2Session;

beforeAll(async () => {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  gw = await startGateway({ tlsCert: cert, tlsKey: key, tlsPort: 0 });
  session = connect(gw.gateway.tlsUrl!, { ca: readFileSync(cert) });
  session.on('error', () => undefined);
});

afterAll(async () => {
  if (!session.closed) session.destroy();
  await gw.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface H2Stream {
  stream: ClientHttp2Stream;
  status: Promise<number>;
  body(): string;
  ended: Promise<void>;
}

function get(path: string, token: string): H2Stream {
  const stream = session.request({ ':path': path, authorization: `Bearer ${token}`, accept: 'text/event-stream' });
  let body = '';
  stream.setEncoding('utf8');
  stream.on('data', (c: string) => (body += c));
  stream.on('error', () => undefined);
  return {
    stream,
    status: new Promise((resolve) => stream.on('response', (h) => resolve(Number(h[':status'])))),
    body: () => body,
    ended: new Promise((resolve) => stream.on('close', () => resolve())),
  };
}

it('multiplexes more than six progress streams over one TLS connection', async () => {
  const alice = await gw.userToken('alice');
  const { progress } = gw.gateway.service('content');
  const ids = Array.from({ length: 8 }, () => progress.create('alice').id);
  const streams = [...ids.map((id) => get(`/api/content/${id}/progress`, alice)), get(`/v1/stream?topic=user:alice&topic=content:${ids[0]}`, alice)];
  expect(await Promise.all(streams.map((s) => s.status))).toEqual(streams.map(() => 200));
  await waitFor(() => streams.every((s) => s.body().includes('event: ready')), 'every stream ready');
  expect(gw.gateway.connections.count('sse')).toBe(9);

  ids.forEach((id, i) => progress.publish(id, 'progress', { progress: i }));
  await waitFor(() => streams.every((s, i) => parseFrames(s.body()).filter((f) => f.fields.event === 'progress').length === (i === 8 ? 9 : 1)), 'every event');
  ids.forEach((id, i) => {
    const [event] = parseFrames(streams[i]!.body()).filter((f) => f.fields.event === 'progress');
    // Each item's own stream: its URL names the item, so the event does not repeat the id.
    expect(event!.fields.id).toMatch(/:1$/);
    expect(JSON.parse(event!.fields.data!)).toEqual({ progress: i, seq: 1, ts: expect.any(Number) });
  });
  // The user's feed mixes items: there each event names its item and its topic.
  const feed = parseFrames(streams[8]!.body()).filter((f) => f.fields.event === 'progress' && (JSON.parse(f.fields.data!) as { topic: string }).topic === 'user:alice');
  ids.forEach((id, i) => {
    expect(JSON.parse(feed[i]!.fields.data!)).toMatchObject({ contentId: id, progress: i, topic: 'user:alice' });
  });
  // One TLS session carried them all.
  expect(session.socket.remoteAddress).toBe('127.0.0.1');
  expect(session.state.localWindowSize).toBeGreaterThan(0);

  // Closing one stream frees it without touching the others.
  streams[0]!.stream.close();
  await waitFor(() => gw.gateway.connections.count('sse') === 8, 'the closed stream to be freed');

  // Drain over HTTP/2: every stream gets `shutdown`, and the session is closed so reconnects go elsewhere.
  const sessionClosed = new Promise<void>((resolve) => session.on('close', () => resolve()));
  await gw.gateway.close();
  await Promise.all(streams.slice(1).map((s) => s.ended));
  for (const s of streams.slice(1)) expect(parseFrames(s.body()).at(-1)!.fields.event).toBe('shutdown');
  await sessionClosed;
  expect(gw.gateway.connections.size).toBe(0);
  expect(gw.gateway.hub.subscriberCount(`content:${ids[1]}`)).toBe(0);
});
