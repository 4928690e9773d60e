// Finding 5 of issue 13: a long-poll outlived its token (a token expiring at 2 s, with
// wait=8, returned 200 with an event published at 4 s). Now the poll is answered
// `token_expired` at expiry and nothing published after it is ever sent, on every
// transport: long-poll, SSE (eventsource) and a Realtime channel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSource } from 'eventsource';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { http } from '../sse/helpers.js';
import { closeClients, RawClient, sleep, waitFor } from '../realtime/helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ realtimeConnectErrorBackoffMs: 0, realtimeChannelErrorBackoffMs: 0 }, { sweepMs: 50 });
});
afterAll(async () => {
  await closeClients();
  await gw.stop();
});

/** A token for `user` that expires at the next whole second at least `seconds` from now (JWT exp is in seconds). */
async function shortToken(user: string, seconds: number): Promise<{ token: string; expiresAt: number }> {
  const exp = Math.ceil(Date.now() / 1000 + seconds);
  return { token: await gw.gateway.auth.sign({ sub: user, role: 'authenticated', exp }), expiresAt: exp * 1000 };
}

describe('token expiry on every transport (finding 5)', () => {
  it('answers a waiting long-poll token_expired at expiry, never with an event published after it', async () => {
    const { progress } = gw.gateway.service('content');
    const id = progress.create('alice').id;
    const { token, expiresAt } = await shortToken('alice', 2);
    const polled = http('GET', `${gw.url}/api/content/${id}/progress/poll?wait=8`, { token });
    // Published after the token expired, while the poll is still within its wait.
    await sleep(Math.max(0, expiresAt - Date.now()) + 100);
    await progress.publish(id, 'progress', { progress: 50 });
    const res = await polled;
    expect(res.status).toBe(401);
    expect(res.json.error?.code).toBe('token_expired');
    expect(JSON.stringify(res.json)).not.toContain('"progress":50');
  });

  it('also on /v1/poll, even when the event is published right after expiry and before any sweep', async () => {
    const slow = await startGateway({}, { sweepMs: 60_000 }); // no sweep within the test: only delivery can catch it
    try {
      const { progress } = slow.gateway.service('content');
      const id = progress.create('bob').id;
      const exp = Math.ceil(Date.now() / 1000 + 1);
      const token = await slow.gateway.auth.sign({ sub: 'bob', role: 'authenticated', exp });
      const polled = http('GET', `${slow.url}/v1/poll?topic=content:${id}&wait=8`, { token });
      await sleep(Math.max(0, exp * 1000 - Date.now()) + 100);
      await progress.publish(id, 'progress', { progress: 70 });
      const res = await polled;
      expect(res.status).toBe(401);
      expect(res.json.error?.code).toBe('token_expired');
    } finally {
      await slow.stop();
    }
  });

  it('ends an SSE stream (eventsource) with token_expired instead of sending a later event', async () => {
    const slow = await startGateway({}, { sweepMs: 60_000 });
    try {
      const { progress } = slow.gateway.service('content');
      const id = progress.create('carol').id;
      const exp = Math.ceil(Date.now() / 1000 + 1);
      const token = await slow.gateway.auth.sign({ sub: 'carol', role: 'authenticated', exp });
      const es = new EventSource(`${slow.url}/api/content/${id}/progress?access_token=${token}`);
      const seen: { type: string; data: string }[] = [];
      for (const type of ['ready', 'progress', 'error']) es.addEventListener(type, (e) => seen.push({ type, data: (e as MessageEvent).data as string }));
      await waitFor(() => seen.some((e) => e.type === 'ready'), 'ready');
      await sleep(Math.max(0, exp * 1000 - Date.now()) + 100);
      await progress.publish(id, 'progress', { progress: 90 });
      await waitFor(() => seen.some((e) => e.type === 'error'), 'the token_expired event');
      es.close();
      expect(seen.filter((e) => e.type === 'progress')).toEqual([]);
      expect(JSON.parse(seen.find((e) => e.type === 'error')!.data).code).toBe('token_expired');
    } finally {
      await slow.stop();
    }
  });

  it('shuts a Realtime channel down instead of delivering a broadcast sent after its token expired', async () => {
    const slow = await startGateway({ realtimeConnectErrorBackoffMs: 0 }, { sweepMs: 60_000 });
    try {
      const exp = Math.ceil(Date.now() / 1000 + 1);
      const token = await slow.gateway.auth.sign({ sub: 'dave', role: 'authenticated', exp });
      const listener = await RawClient.connect(slow, slow.keys.anon);
      const { joinRef } = await listener.join('expiring', {}, { access_token: token });
      const sender = await RawClient.connect(slow, slow.keys.anon);
      const s = await sender.join('expiring');
      await sleep(Math.max(0, exp * 1000 - Date.now()) + 100);
      sender.send([s.joinRef, '9', 'realtime:expiring', 'broadcast', { type: 'broadcast', event: 'late', payload: {} }]);
      const system = await listener.waitFrame((f) => Array.isArray(f) && f[3] === 'system', 'the expiry notice');
      expect((system as unknown[])[4]).toMatchObject({ extension: 'system', status: 'error', message: expect.stringMatching(/^Token has expired \d+ seconds ago$/) });
      await sleep(100);
      expect(listener.frames.filter((f) => Array.isArray(f) && f[3] === 'broadcast')).toEqual([]);
      expect(listener.frames).toContainEqual([joinRef, joinRef, 'realtime:expiring', 'phx_close', {}]);
      listener.close();
      sender.close();
    } finally {
      await slow.stop();
    }
  });
});
