// Auth as Supabase Realtime does it: at connect (HTTP status + {"error"} body), at join
// (Supabase's join error reasons), on access_token refresh, and the token-expiry watchdog
// that runs from the shared sweep.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import type { RealtimeSocket } from '../../src/realtime/socket.js';
import { closeClients, RawClient, refusedUpgrade, startRealtimeGateway, subscribe, supabase, waitFor } from './helpers.js';

let gw: TestGateway;
let wsBase: string;
const now = (): number => Math.floor(Date.now() / 1000);

async function signed(claims: Record<string, unknown>, secret = TEST_SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

beforeAll(async () => {
  gw = await startRealtimeGateway();
  wsBase = `${gw.url.replace('http', 'ws')}/realtime/v1/websocket`;
});
afterEach(closeClients);
afterAll(() => gw.stop());

describe('connect', () => {
  it("refuses bad keys with Supabase's status and {error} body", async () => {
    const cases: [string, string][] = [
      [`${wsBase}?vsn=2.0.0`, 'API key is missing'],
      [`${wsBase}?apikey=not-a-jwt&vsn=2.0.0`, 'The token provided is not a valid JWT'],
      [`${wsBase}?apikey=${await signed({ role: 'anon', exp: now() + 60 }, 'another-secret-another-secret-another-secret')}&vsn=2.0.0`, 'Failed to validate JWT signature'],
      [`${wsBase}?apikey=${await signed({ role: 'anon', exp: now() - 60 })}&vsn=2.0.0`, 'Token has expired'],
      [`${wsBase}?apikey=${await signed({ sub: 'no-role-no-exp' })}&vsn=2.0.0`, 'Fields `role` and `exp` are required in JWT'],
    ];
    for (const [url, message] of cases) {
      expect(await refusedUpgrade(url)).toEqual({ status: 401, body: JSON.stringify({ error: message }) });
    }
    expect(await refusedUpgrade(`${wsBase}?apikey=${gw.keys.anon}&vsn=3.0.0`)).toMatchObject({ status: 403 });
    expect(gw.gateway.connections.count('ws')).toBe(0);
  });

  it('takes the key from the x-api-key header, and a missing vsn means serializer 1.0.0', async () => {
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(wsBase, { headers: { 'x-api-key': gw.keys.anon } });
    const reply = await new Promise<unknown>((resolve, reject) => {
      ws.on('open', () => ws.send(JSON.stringify({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '1' })));
      ws.on('message', (d: Buffer) => resolve(JSON.parse(d.toString())));
      ws.on('error', reject);
    });
    expect(reply).toEqual({ topic: 'phoenix', event: 'phx_reply', payload: { status: 'ok', response: {} }, ref: '1' });
    ws.close();
  });

  it('sleeps the connect back-off before refusing', async () => {
    const slow = await startRealtimeGateway({ realtimeConnectErrorBackoffMs: 300 });
    try {
      const started = Date.now();
      expect((await refusedUpgrade(`${slow.url.replace('http', 'ws')}/realtime/v1/websocket?vsn=2.0.0`)).status).toBe(401);
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    } finally {
      await slow.stop();
    }
  });
});

describe('join', () => {
  it('refuses join tokens with the real server reasons, and accepts sb_ keys as "use the socket token"', async () => {
    const raw = await RawClient.connect(gw);
    const cases: [string, RegExp][] = [
      [await signed({ role: 'anon', exp: now() - 30 }), /^InvalidJWTToken: Token has expired \d+ seconds ago$/],
      [await signed({ role: 'anon', exp: now() + 60 }, 'another-secret-another-secret-another-secret'), /^JwtSignatureError: Failed to validate JWT signature$/],
      ['garbage', /^MalformedJWT: The token provided is not a valid JWT$/],
      [await signed({ sub: 'x' }), /^InvalidJWTToken: Fields `role` and `exp` are required in JWT$/],
    ];
    for (const [i, [token, reason]] of cases.entries()) {
      const { reply } = await raw.join(`tok-${i}`, {}, { access_token: token });
      expect(reply[4]).toMatchObject({ status: 'error', response: { reason: expect.stringMatching(reason) } });
    }
    const { reply } = await raw.join('tok-sb', {}, { access_token: 'sb_publishable_abc' });
    expect(reply[4]).toMatchObject({ status: 'ok' });
    const joins = await gw.gateway.metrics.joins.get();
    expect(joins.values.find((v) => v.labels.result === 'invalid_token')?.value).toBe(4);
    raw.close();
  });

  it('answers an empty subtopic and a foreign topic like the real server', async () => {
    const raw = await RawClient.connect(gw);
    const { reply } = await raw.join('');
    expect(reply[4]).toEqual({ status: 'error', response: { reason: 'TopicNameRequired: You must provide a topic name' } });
    raw.send(['9', '9', 'room:not-realtime', 'phx_join', {}]);
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[1] === '9', 'unmatched reply')).toEqual([null, '9', 'room:not-realtime', 'phx_reply', { status: 'error', response: { reason: 'unmatched topic' } }]);
    raw.close();
  });

  it('supabase-js sees CHANNEL_ERROR with the reason when its token is expired, after the channel back-off', async () => {
    const slow = await startRealtimeGateway({ realtimeChannelErrorBackoffMs: 300 });
    try {
      const client = supabase(slow);
      await client.realtime.setAuth(await slow.gateway.auth.sign({ role: 'authenticated', sub: 'u1', exp: now() - 5 }));
      const started = Date.now();
      const { status, error } = await subscribe(client.channel('expired-join'));
      expect(status).toBe('CHANNEL_ERROR');
      expect(error?.message).toMatch(/^InvalidJWTToken: Token has expired \d+ seconds ago$/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    } finally {
      await closeClients();
      await slow.stop();
    }
  });
});

describe('access_token and expiry', () => {
  function serverChannel(sub: string, key: string): { claims?: { sub?: string; role: string } } {
    const sockets = [...gw.gateway.connections.connections()] as RealtimeSocket[];
    return sockets.map((s) => s.channels.get(`realtime:${sub}`)).find((c) => c?.presenceKey === key)!;
  }

  it('adopts a refreshed token without a reply and keeps the channel; an expired one shuts it down', async () => {
    const client = supabase(gw);
    const ch = client.channel('refresh-room', { config: { presence: { key: 'refresher' } } });
    const system: { status: string; message: string; extension: string }[] = [];
    ch.on('system', {}, (p: { status: string; message: string; extension: string }) => system.push(p));
    const { statuses } = await subscribe(ch);
    expect(statuses[0]!.status).toBe('SUBSCRIBED');
    expect(serverChannel('refresh-room', 'refresher').claims?.role).toBe('anon');

    await client.realtime.setAuth(await gw.userToken('user-42'));
    await waitFor(() => serverChannel('refresh-room', 'refresher').claims?.sub === 'user-42', 'the channel to adopt the user token');
    expect(await ch.send({ type: 'broadcast', event: 'still', payload: {} })).toBe('ok');
    expect(statuses.map((s) => s.status)).toEqual(['SUBSCRIBED']);

    await client.realtime.setAuth(await gw.gateway.auth.sign({ role: 'authenticated', sub: 'user-42', exp: now() - 3 }));
    await waitFor(() => statuses.some((s) => s.status === 'CLOSED'), 'CLOSED after an expired token');
    expect(system).toEqual([{ extension: 'system', status: 'error', message: expect.stringMatching(/^Token has expired \d+ seconds ago$/), channel: 'refresh-room' }]);
  });

  it('shuts a channel down when its token expires while joined (watchdog from the shared sweep)', async () => {
    const client = supabase(gw);
    await client.realtime.setAuth(await gw.gateway.auth.sign({ role: 'authenticated', sub: 'short-lived', exp: now() + 2 }));
    const ch = client.channel('expiry-room');
    const system: { message: string }[] = [];
    ch.on('system', {}, (p: { message: string }) => system.push(p));
    const { statuses } = await subscribe(ch);
    await waitFor(() => statuses.some((s) => s.status === 'CLOSED'), 'watchdog close', 5000);
    expect(system[0]!.message).toMatch(/^Token has expired \d+ seconds ago$/);
    // The socket itself stays up: heartbeats and other channels carry on.
    expect(client.realtime.connectionState()).toBe('open');
  });
});
