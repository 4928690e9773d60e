// Clients that leave while their request is still being authorized (token verification
// is asynchronous) must not leave a stream, a poll or a subscription behind.
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from './helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(() => gw.stop());

it('frees streams and polls whose client hung up before they opened', async () => {
  const { progress } = gw.gateway.service('content');
  const id = progress.create('alice').id;
  const m = await progress.publish(id, 'progress', { progress: 1 });
  const url = new URL(gw.url);
  const paths = [`/api/content/${id}/progress`, '/api/content/progress', `/v1/stream?topic=content:${id}`, `/api/content/${id}/progress/poll?after=${m.epoch}:1&wait=30`];
  const closed: Promise<void>[] = [];
  for (let i = 0; i < 200; i++) {
    // A fresh token each time, so verification really is asynchronous.
    const token = await gw.gateway.auth.userToken('alice', 3600 + i);
    const socket = connect(Number(url.port), url.hostname);
    closed.push(new Promise((resolve) => socket.on('close', () => resolve())));
    socket.on('error', () => undefined);
    socket.write(`GET ${paths[i % paths.length]} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${token}\r\n\r\n`, () => socket.destroy());
  }
  await Promise.all(closed);
  await waitFor(() => gw.gateway.connections.size === 0, 'every connection to be freed', 5000);
  expect(gw.gateway.hub.subscriberCount(`content:${id}`)).toBe(0);
  expect(gw.gateway.hub.subscriberCount('user:alice')).toBe(0);
});
