// Limits with Supabase's replies (reference §8.1): channels per connection, joins per
// second, messages per second, payload size, presence calls; plus slow consumers and
// drain. Each time the offender gets the error or the close, and everyone else carries on.
import { afterEach, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '../../src/core/config.js';
import type { TestGateway } from '../helpers/gateway.js';
import { closeClients, joined, RawClient, refusedUpgrade, sleep, startRealtimeGateway, subscribe, supabase, userBroadcastPush, waitFor } from './helpers.js';

const gateways: TestGateway[] = [];
async function gateway(overrides: Partial<GatewayConfig>): Promise<TestGateway> {
  const gw = await startRealtimeGateway(overrides);
  gateways.push(gw);
  return gw;
}
afterEach(async () => {
  await closeClients();
  for (const gw of gateways.splice(0)) await gw.stop();
});

type System = { extension: string; status: string; message: string; channel: string };

/** A joined client on `sub` that records broadcasts; proves the others are unaffected. */
async function bystander(gw: TestGateway, sub: string): Promise<{ got: unknown[] }> {
  const ch = supabase(gw).channel(sub);
  const got: unknown[] = [];
  ch.on('broadcast', { event: 'check' }, (p: { payload: unknown }) => got.push(p.payload));
  await joined(ch);
  return { got };
}

async function metric(gw: TestGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await gw.gateway.metrics.registry.getSingleMetric(name)!.get()) as { values: { value: number; labels: Record<string, string | number> }[] };
  return m.values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((a, v) => a + v.value, 0);
}

describe('channels per connection', () => {
  it('refuses the join beyond the limit with ChannelRateLimitReached; the joined ones keep working', async () => {
    const gw = await gateway({ realtimeMaxChannelsPerClient: 3 });
    const client = supabase(gw);
    const channels = ['a', 'b', 'c'].map((n) => client.channel(`limit-${n}`));
    for (const ch of channels) await joined(ch);
    const { status, error } = await subscribe(client.channel('limit-d'));
    expect(status).toBe('CHANNEL_ERROR');
    expect(error?.message).toBe('ChannelRateLimitReached: Too many channels');
    const other = await bystander(gw, 'limit-a');
    expect(await channels[0]!.send({ type: 'broadcast', event: 'check', payload: { ok: 1 } })).toBe('ok');
    await waitFor(() => other.got.length === 1, 'delivery on a channel of the limited socket');
  });
});

describe('connection caps', () => {
  it('answers a socket over the per-user cap with 429 "Too many connected users" naming the limit; the first socket keeps working', async () => {
    const gw = await gateway({ maxConnectionsPerUser: 1 });
    const token = await gw.userToken('u1');
    const first = await RawClient.connect(gw, token);
    const refused = await refusedUpgrade(`${gw.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${token}&vsn=2.0.0`);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body)).toEqual({ error: 'Too many connected users (user u1 already has 1 open connections (--max-connections-per-user))' });
    expect((await first.join('still-here')).reply[4]).toMatchObject({ status: 'ok' });
    expect(await metric(gw, 'fanout_connections_rejected_total', { transport: 'ws' })).toBe(1);
    first.close();
  });

  it('counts sockets opened with a key without a user by client address', async () => {
    const gw = await gateway({ maxConnectionsPerAddress: 1 });
    const first = await RawClient.connect(gw);
    const refused = await refusedUpgrade(`${gw.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${gw.keys.anon}&vsn=2.0.0`);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error).toBe('Too many connected users (client address 127.0.0.1 (keys without a user) already has 1 open connections (--max-connections-per-address))');
    // A signed-in user's socket is not in that bucket.
    const user = await RawClient.connect(gw, await gw.userToken('u2'));
    expect((await user.join('fine')).reply[4]).toMatchObject({ status: 'ok' });
    first.close();
    user.close();
  });
});

describe('joins per second', () => {
  it('refuses joins of one user over its bucket and disconnects the joiner, while another user joins freely', async () => {
    const gw = await gateway({ realtimeUserJoinsPerSecond: 1, realtimeUserJoinBurst: 5 });
    const bad = await gw.userToken('hog');
    const raw = await RawClient.connect(gw, bad);
    for (let i = 0; i < 20; i++) raw.send([`b${i}`, `b${i}`, `realtime:burst-${i}`, 'phx_join', { config: {}, access_token: bad }]);
    expect((await raw.waitClose()).code).toBe(1001);
    const replies = raw.frames.filter((f) => Array.isArray(f) && f[3] === 'phx_reply') as unknown[][];
    // Joins still in flight when the socket is disconnected are dropped with it, as on Supabase.
    expect(replies.filter((r) => (r[4] as { status: string }).status === 'ok').length).toBeLessThanOrEqual(5);
    expect(replies.at(-1)![4]).toEqual({ status: 'error', response: { reason: 'ClientJoinRateLimitReached: Too many joins per second (per user hog: 1/s, burst 5)' } });
    // Its next socket is refused at the upgrade while its bucket is empty, with the limit named.
    const refused = await refusedUpgrade(`${gw.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${bad}&vsn=2.0.0`);
    expect(refused).toEqual({ status: 429, body: JSON.stringify({ error: 'Too many joins per second (per user hog: 1/s, burst 5)' }) });
    // Someone else is untouched.
    const calm = await RawClient.connect(gw, await gw.userToken('calm'));
    expect((await calm.join('calm')).reply[4]).toMatchObject({ status: 'ok' });
    calm.close();
  });

  it('limits join/leave churn on one socket with its own bucket (burst: the channels a client may hold plus one second)', async () => {
    const gw = await gateway({ realtimeSocketJoinsPerSecond: 1, realtimeMaxChannelsPerClient: 3 });
    const raw = await RawClient.connect(gw);
    for (let i = 0; i < 10; i++) {
      raw.send([`c${i}`, `c${i}`, 'realtime:churn', 'phx_join', { config: {} }]);
      raw.send([`c${i}`, `l${i}`, 'realtime:churn', 'phx_leave', {}]);
    }
    expect((await raw.waitClose()).code).toBe(1001);
    const joins = raw.frames.filter((f) => Array.isArray(f) && f[3] === 'phx_reply' && String(f[1]).startsWith('c')) as unknown[][];
    expect(joins.filter((r) => (r[4] as { status: string }).status === 'ok').length).toBeLessThanOrEqual(4);
    expect(joins.at(-1)![4]).toEqual({ status: 'error', response: { reason: 'ClientJoinRateLimitReached: Too many joins per second (per connection: 1/s, burst 4)' } });
  });

  it('refuses joins over the gateway-wide bucket without disconnecting anyone', async () => {
    const gw = await gateway({ realtimeMaxJoinsPerSecond: 3 });
    const a = await RawClient.connect(gw, await gw.userToken('a'));
    const b = await RawClient.connect(gw, await gw.userToken('b'));
    expect((await a.join('g1')).reply[4]).toMatchObject({ status: 'ok' });
    expect((await a.join('g2')).reply[4]).toMatchObject({ status: 'ok' });
    expect((await b.join('g3')).reply[4]).toMatchObject({ status: 'ok' });
    expect((await b.join('g4')).reply[4]).toEqual({ status: 'error', response: { reason: 'ClientJoinRateLimitReached: Too many joins per second (gateway-wide: 3/s, burst 3)' } });
    await sleep(100);
    expect(b.closed).toBeUndefined();
    a.close();
    b.close();
  });
});

describe('messages per second', () => {
  it('shuts the flooding channel down with "Too many messages per second"; other clients carry on', async () => {
    const gw = await gateway({ realtimeMaxEventsPerSecond: 20, realtimeEventBurst: 20 });
    const other = await bystander(gw, 'flood-room');
    const flooder = supabase(gw).channel('flood-room');
    const system: System[] = [];
    flooder.on('system', {}, (p: System) => system.push(p));
    const { statuses } = await subscribe(flooder);
    for (let i = 0; i < 60; i++) void flooder.send({ type: 'broadcast', event: 'spam', payload: { i } });
    await waitFor(() => statuses.some((s) => s.status === 'CLOSED'), 'flooder closed');
    expect(system).toEqual([{ extension: 'system', status: 'error', message: 'Too many messages per second (per connection: 20/s, burst 20)', channel: 'flood-room' }]);
    const sender = supabase(gw).channel('flood-room');
    await joined(sender);
    expect(await sender.send({ type: 'broadcast', event: 'check', payload: { after: true } })).toBe('ok');
    await waitFor(() => other.got.length === 1, 'bystander delivery after the flood');
    expect(await metric(gw, 'fanout_errors_total', { kind: 'rate_limit' })).toBeGreaterThan(0);
  });

  it('does not count joins, leaves or token refreshes: an app may join many channels at once', async () => {
    const gw = await gateway({ realtimeMaxEventsPerSecond: 20 });
    const raw = await RawClient.connect(gw);
    for (let i = 0; i < 30; i++) raw.send([`j${i}`, `j${i}`, `realtime:many-${i}`, 'phx_join', { config: {}, access_token: gw.keys.anon }]);
    await waitFor(() => raw.frames.filter((f) => Array.isArray(f) && f[3] === 'phx_reply').length === 30, '30 join replies');
    for (let i = 0; i < 30; i++) raw.send([`j${i}`, null, `realtime:many-${i}`, 'access_token', { access_token: gw.keys.anon }]);
    await sleep(300); // several sweeps
    expect(raw.frames.filter((f) => Array.isArray(f) && (f[3] === 'system' || f[3] === 'phx_close'))).toEqual([]);
    expect(raw.closed).toBeUndefined();
    raw.close();
  });

  it('closes a socket that keeps flooding after its channels were shut down (1008), without touching others', async () => {
    const gw = await gateway({ realtimeMaxEventsPerSecond: 20, realtimeEventBurst: 20 });
    const other = await bystander(gw, 'raw-flood');
    const raw = await RawClient.connect(gw);
    const { joinRef } = await raw.join('raw-flood');
    const frame = userBroadcastPush(joinRef, '', 'realtime:raw-flood', 'spam', Buffer.from('{}'));
    for (let round = 0; round < 40 && !raw.closed; round++) {
      for (let i = 0; i < 100; i++) raw.sendBinary(frame);
      await sleep(50);
    }
    const closed = await raw.waitClose();
    expect(closed).toEqual({ code: 1008, reason: 'Too many messages per second (per connection: 20/s, burst 20)' });
    expect(raw.frames).toContainEqual([joinRef, null, 'realtime:raw-flood', 'system', { extension: 'system', status: 'error', message: 'Too many messages per second (per connection: 20/s, burst 20)', channel: 'raw-flood' }]);
    const sender = supabase(gw).channel('raw-flood');
    await joined(sender);
    expect(await sender.send({ type: 'broadcast', event: 'check', payload: {} })).toBe('ok');
    await waitFor(() => other.got.length === 1, 'bystander still served');
  });
});

describe('payload size', () => {
  it('answers an oversized acked broadcast with payload_size_exceeded and delivers nothing', async () => {
    const gw = await gateway({ realtimeMaxPayloadKb: 1 }); // 1,000 bytes + 500 bytes of slack
    const receiver = supabase(gw).channel('size-room');
    const got: unknown[] = [];
    receiver.on('broadcast', { event: '*' }, (p: { payload: unknown }) => got.push(p.payload));
    await joined(receiver);
    const sender = supabase(gw).channel('size-room', { config: { broadcast: { ack: true } } });
    await joined(sender);
    expect(await sender.send({ type: 'broadcast', event: 'big', payload: { blob: 'x'.repeat(2000) } })).toBe('error');
    expect(await sender.send({ type: 'broadcast', event: 'small', payload: { blob: 'x'.repeat(1000) } })).toBe('ok');
    await waitFor(() => got.length === 1, 'the small one');
    await sleep(100);
    expect(got).toEqual([{ blob: 'x'.repeat(1000) }]);
  });

  it('shuts down a channel that tracks an oversized presence payload', async () => {
    const gw = await gateway({ realtimeMaxPayloadKb: 1 });
    const ch = supabase(gw).channel('size-presence', { config: { presence: { key: 'big' } } });
    const system: System[] = [];
    ch.on('system', {}, (p: System) => system.push(p));
    const { statuses } = await subscribe(ch);
    void ch.track({ blob: 'x'.repeat(2000) });
    await waitFor(() => statuses.some((s) => s.status === 'CLOSED'), 'closed');
    expect(system.map((s) => s.message)).toEqual(['Track message size exceeded']);
  });
});

describe('presence calls', () => {
  it('allows 5 presence calls per 30 s per channel, then shuts it down', async () => {
    const gw = await gateway({});
    const ch = supabase(gw).channel('presence-limit', { config: { presence: { key: 'busy' } } });
    const system: System[] = [];
    ch.on('system', {}, (p: System) => system.push(p));
    const { statuses } = await subscribe(ch);
    for (let i = 0; i < 5; i++) expect(await ch.track({ i })).toBe('ok');
    void ch.track({ i: 5 });
    await waitFor(() => statuses.some((s) => s.status === 'CLOSED'), 'closed after the 6th call');
    expect(system.map((s) => s.message)).toEqual(['Client presence rate limit exceeded']);
  });
});

describe('slow consumers', () => {
  it('disconnects a socket that stops reading once its unsent bytes pass the budget; the sender carries on', async () => {
    const gw = await gateway({ slowConsumerBytes: 256 * 1024, realtimeMaxEventsPerSecond: 1_000_000 });
    const stuck = await RawClient.connect(gw);
    await stuck.join('slow-room');
    stuck.ws.pause(); // stop reading: the server's send buffer grows
    const sender = supabase(gw).channel('slow-room');
    await joined(sender);
    const blob = 'y'.repeat(64 * 1024);
    for (let i = 0; i < 400 && gw.gateway.connections.count('ws') === 2; i++) {
      await sender.send({ type: 'broadcast', event: 'fill', payload: { i, blob } });
      if (i % 20 === 0) await sleep(10);
    }
    await waitFor(async () => (await metric(gw, 'fanout_slow_consumer_disconnects_total', { transport: 'ws' })) === 1, 'slow-consumer disconnect', 10_000);
    await waitFor(() => gw.gateway.connections.count('ws') === 1, 'the stuck socket to be gone', 10_000);
    expect(await sender.send({ type: 'broadcast', event: 'after', payload: {} })).toBe('ok');
    stuck.ws.resume();
    const closed = await stuck.waitClose(10_000);
    expect([1013, 1006]).toContain(closed.code); // 1006 when the close grace ran out before it read the close frame
  });
});

describe('large messages', () => {
  it('delivers a payload bigger than the slow-consumer budget to a client that reads it', async () => {
    const gw = await gateway({ slowConsumerBytes: 64 * 1024 });
    const receiver = supabase(gw).channel('large-room');
    const got: { blob: string }[] = [];
    receiver.on('broadcast', { event: 'big' }, (p: { payload: { blob: string } }) => got.push(p.payload));
    await joined(receiver);
    const sender = supabase(gw).channel('large-room', { config: { broadcast: { ack: true } } });
    await joined(sender);
    expect(await sender.send({ type: 'broadcast', event: 'big', payload: { blob: 'L'.repeat(2_000_000) } })).toBe('ok');
    await waitFor(() => got.length === 1, 'the 2 MB message', 10_000);
    expect(got[0]!.blob.length).toBe(2_000_000);
    await sleep(200); // a few sweeps
    expect(await metric(gw, 'fanout_slow_consumer_disconnects_total')).toBe(0);
    expect(gw.gateway.connections.count('ws')).toBe(2);
  });
});

describe('drain', () => {
  it('tells every channel "Server requested disconnect" and closes on shutdown', async () => {
    const gw = await startRealtimeGateway({ drainTimeoutMs: 2000 });
    const raw = await RawClient.connect(gw);
    const { joinRef } = await raw.join('drain-room');
    await gw.stop();
    const closed = await raw.waitClose();
    expect(closed.code).toBe(1001);
    expect(raw.frames).toContainEqual([joinRef, null, 'realtime:drain-room', 'system', { extension: 'system', status: 'ok', message: 'Server requested disconnect', channel: 'drain-room' }]);
  });
});
