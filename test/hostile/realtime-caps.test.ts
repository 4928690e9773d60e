// Finding 1 of issue 13: the per-user WebSocket cap was one shared bucket for every
// supabase-js user (they all connect with the anon key and send their own token in the
// join), so 105 signed-in users got 5 refusals and anyone holding the public anon key could
// lock every supabase-js user out with 100 sockets. Now a socket counts against the user its
// join names, and a socket without one against its client address.
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { TestGateway } from '../helpers/gateway.js';
import { closeClients, RawClient, startRealtimeGateway, subscribe, supabase, waitFor } from '../realtime/helpers.js';

const gateways: TestGateway[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await closeClients();
  for (const gw of gateways.splice(0)) await gw.stop();
});

/** Opens a raw anon-key socket from `localAddress`, resolving with the HTTP status (101 when upgraded). */
function anonSocket(gw: TestGateway, localAddress: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${gw.keys.anon}&vsn=2.0.0`, { localAddress, headers, perMessageDeflate: false });
    sockets.push(ws);
    ws.on('open', () => resolve(101));
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(0));
  });
}

describe('per-identity connection caps (finding 1)', () => {
  it('subscribes 105 signed-in supabase-js users under the default cap of 100 per user', async () => {
    const gw = await startRealtimeGateway({});
    gateways.push(gw);
    expect(gw.gateway.config.maxConnectionsPerUser).toBe(100);
    const results = await Promise.all(
      Array.from({ length: 105 }, async (_, i) => {
        const client = supabase(gw, gw.keys.anon);
        await client.realtime.setAuth(await gw.userToken(`user-${i}`));
        return (await subscribe(client.channel('room'))).status;
      }),
    );
    expect(results.filter((s) => s === 'SUBSCRIBED').length).toBe(105);
  });

  it('an anon-key client filling its address cap locks out no one else', async () => {
    const gw = await startRealtimeGateway({ maxConnectionsPerAddress: 100 });
    gateways.push(gw);
    const hostile = await Promise.all(Array.from({ length: 100 }, () => anonSocket(gw, '127.0.0.2')));
    expect(hostile.every((s) => s === 101)).toBe(true);
    expect(await anonSocket(gw, '127.0.0.2')).toBe(429);
    // supabase-js users (anon key in the URL, their token in the join) connect as before.
    for (let i = 0; i < 5; i++) {
      const client = supabase(gw, gw.keys.anon);
      await client.realtime.setAuth(await gw.userToken(`victim-${i}`));
      expect((await subscribe(client.channel('room'))).status).toBe('SUBSCRIBED');
    }
  });

  it('refuses a join whose user is at its cap with ConnectionRateLimitReached, naming the limit', async () => {
    const gw = await startRealtimeGateway({ maxConnectionsPerUser: 1 });
    gateways.push(gw);
    const token = await gw.userToken('solo');
    const first = await RawClient.connect(gw);
    expect((await first.join('a', {}, { access_token: token })).reply[4]).toMatchObject({ status: 'ok' });
    const second = await RawClient.connect(gw);
    const { reply } = await second.join('b', {}, { access_token: token });
    expect(reply[4]).toEqual({ status: 'error', response: { reason: 'ConnectionRateLimitReached: Too many connected users (user solo already has 1 open connections (--max-connections-per-user))' } });
    first.close();
    second.close();
  });

  it('trusts X-Forwarded-For only from --trusted-proxies', async () => {
    const open = await startRealtimeGateway({ maxConnectionsPerAddress: 1 });
    gateways.push(open);
    // Not trusted: a client cannot pick a fresh address per socket to dodge its cap.
    expect(await anonSocket(open, '127.0.0.3', { 'x-forwarded-for': '203.0.113.1' })).toBe(101);
    expect(await anonSocket(open, '127.0.0.3', { 'x-forwarded-for': '203.0.113.2' })).toBe(429);
    const proxied = await startRealtimeGateway({ maxConnectionsPerAddress: 1, trustedProxies: 'loopback' });
    gateways.push(proxied);
    // Behind a trusted proxy each client counts by the address the proxy recorded.
    expect(await anonSocket(proxied, '127.0.0.4', { 'x-forwarded-for': '203.0.113.1' })).toBe(101);
    expect(await anonSocket(proxied, '127.0.0.4', { 'x-forwarded-for': '203.0.113.2' })).toBe(101);
    expect(await anonSocket(proxied, '127.0.0.4', { 'x-forwarded-for': '203.0.113.1' })).toBe(429);
    await waitFor(() => proxied.gateway.connections.count('ws') === 2, 'two sockets behind the proxy');
  });
});
