// Findings 3, 4 and 8 of issue 13, each with raw `ws` sockets doing what supabase-js never
// would, and a bystander proving nobody else is harmed:
//  3. one user's join/leave flood made every new WebSocket of every user get 429 for ~65 s;
//  4. a broadcast burst passed the per-socket limit (11,212 of 20,000 reached a member in 3 s);
//  8. a postgres_changes binding {"event": 5} was accepted with an ok reply and an id.
import { afterEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { closeClients, joined, RawClient, sleep, startRealtimeGateway, supabase, userBroadcastPush, waitFor, type Frame } from '../realtime/helpers.js';

const gateways: TestGateway[] = [];
afterEach(async () => {
  await closeClients();
  for (const gw of gateways.splice(0)) await gw.stop();
});
async function gateway(): Promise<TestGateway> {
  const gw = await startRealtimeGateway({});
  gateways.push(gw);
  return gw;
}

const isReply = (f: Frame): f is unknown[] => Array.isArray(f) && f[3] === 'phx_reply';

describe('a join flood by one user (finding 3)', () => {
  it('refuses and disconnects the flooder; every other user still connects and joins', async () => {
    const gw = await gateway();
    const hog = await gw.userToken('hog');
    const flooders = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(gw, hog)));
    // 20 sockets × 100 join/leave pairs, sent as fast as the sockets take them.
    for (const [s, raw] of flooders.entries()) {
      for (let i = 0; i < 100; i++) {
        const ref = `${s}-${i}`;
        raw.send([ref, ref, `realtime:flood-${s}-${i}`, 'phx_join', { config: {}, access_token: hog }]);
        raw.send([ref, `${ref}-l`, `realtime:flood-${s}-${i}`, 'phx_leave', {}]);
      }
    }
    await waitFor(() => flooders.every((f) => f.closed || f.frames.filter(isReply).length >= 200), 'every flooding socket answered in full or closed', 15_000);
    await sleep(200); // a few sweeps, so any limit measured by the sweep has seen the flood
    // Right after: other users open new sockets and join, with supabase-js and raw ws.
    const calm = await RawClient.connect(gw, await gw.userToken('calm'));
    expect((await calm.join('after-the-flood')).reply[4]).toMatchObject({ status: 'ok' });
    const client = supabase(gw, gw.keys.anon);
    await client.realtime.setAuth(await gw.userToken('someone'));
    await joined(client.channel('after-the-flood'));
    // Each flooding socket that was refused is disconnected (1001), as Supabase does.
    const refusals = flooders.flatMap((f) => f.frames.filter(isReply).map((r) => (r[4] as { response: { reason?: string } }).response.reason).filter(Boolean));
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.every((r) => r!.startsWith('ClientJoinRateLimitReached: Too many joins per second (per '))).toBe(true);
    expect(flooders.filter((f) => f.closed?.code === 1001).length).toBeGreaterThanOrEqual(18);
    const accepted = flooders.reduce((n, f) => n + f.frames.filter((r) => isReply(r) && (r[4] as { status: string }).status === 'ok' && String(r[1]).endsWith('-l') === false).length, 0);
    expect(accepted).toBeLessThanOrEqual(200 + 20 * 5); // the user's burst (--realtime-user-join-burst 200) plus what refilled meanwhile
    calm.close();
  });
});

describe('a broadcast burst from one socket (finding 4)', () => {
  it('lets through no more than the socket bucket allows, shuts the sender down, and keeps serving the receiver', async () => {
    const gw = await gateway();
    // The defaults: --realtime-max-events-per-second 100, --realtime-event-burst 500.
    const [rate, burst] = [100, 500];
    const receiver = supabase(gw).channel('burst-room');
    let received = 0;
    receiver.on('broadcast', { event: 'spam' }, () => received++);
    receiver.on('broadcast', { event: 'check' }, () => (checked = true));
    let checked = false;
    await joined(receiver);
    const raw = await RawClient.connect(gw);
    const { joinRef } = await raw.join('burst-room');
    const started = Date.now();
    const frame = userBroadcastPush(joinRef, '', 'realtime:burst-room', 'spam', Buffer.from('{"n":1}'));
    for (let i = 0; i < 20_000 && !raw.closed; i++) {
      raw.sendBinary(frame);
      if (i % 2000 === 1999) await sleep(1);
    }
    const system = (f: Frame): boolean => Array.isArray(f) && f[3] === 'system';
    await raw.waitFrame(system, 'the sender told it is over the limit', 15_000);
    // Still flooding a second later: the socket is closed.
    for (let round = 0; round < 40 && !raw.closed; round++) {
      for (let i = 0; i < 100; i++) raw.sendBinary(frame);
      await sleep(50);
    }
    await waitFor(() => raw.closed, 'the flooding socket closed', 15_000);
    const seconds = (Date.now() - started) / 1000;
    await sleep(200);
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThanOrEqual(burst + Math.ceil(rate * seconds) + 1);
    expect(raw.closed!.code).toBe(1008);
    expect(raw.frames).toContainEqual([joinRef, null, 'realtime:burst-room', 'system', { extension: 'system', status: 'error', message: `Too many messages per second (per connection: ${rate}/s, burst ${burst})`, channel: 'burst-room' }]);
    const sender = supabase(gw).channel('burst-room');
    await joined(sender);
    expect(await sender.send({ type: 'broadcast', event: 'check', payload: {} })).toBe('ok');
    await waitFor(() => checked, 'the receiver still served');
  });
});

describe('postgres_changes bindings (finding 8)', () => {
  it('refuses a binding whose fields are not strings, with Supabase join schema wording', async () => {
    const gw = await gateway();
    const raw = await RawClient.connect(gw);
    const { reply } = await raw.join('pc', { postgres_changes: [{ event: 5 }] });
    expect(reply[4]).toEqual({ status: 'error', response: { reason: 'InvalidJoinPayload: config.postgres_changes[0].event: unable to parse, expected string' } });
    const notMaps = await raw.join('pc2', { postgres_changes: ['public.items'] });
    expect(notMaps.reply[4]).toEqual({ status: 'error', response: { reason: 'InvalidJoinPayload: config.postgres_changes: unable to parse, expected an array of maps' } });
    const many = await raw.join('pc3', { postgres_changes: Array.from({ length: 101 }, (_, i) => ({ event: '*', schema: 'public', table: `t${i}` })) });
    expect(many.reply[4]).toEqual({ status: 'error', response: { reason: 'InvalidJoinPayload: config.postgres_changes: 101 bindings, at most 100 per join (--realtime-max-bindings-per-join)' } });
    // The socket is fine and a valid join still works.
    expect((await raw.join('plain')).reply[4]).toMatchObject({ status: 'ok' });
    raw.close();
  });
});

describe('names a client chooses (finding 2, sizes)', () => {
  it('refuses topics and broadcast events over 255 bytes and presence keys over 255 bytes', async () => {
    const gw = await gateway();
    const raw = await RawClient.connect(gw);
    const long = `realtime:${'t'.repeat(247)}`; // 256 bytes
    raw.send(['long', 'long', long, 'phx_join', { config: {} }]);
    const reply = await raw.waitFrame((f) => isReply(f) && f[1] === 'long', 'reply to the long topic');
    expect((reply as unknown[])[4]).toEqual({ status: 'error', response: { reason: 'TopicNameTooLong: The topic name must be at most 255 bytes (got 256)' } });
    expect(gw.gateway.hub.topicCount).toBe(0);
    const exact = await raw.join('t'.repeat(246));
    expect(exact.reply[4], JSON.stringify(exact.reply)).toMatchObject({ status: 'ok' }); // exactly 255
    const key = await raw.join('k', { presence: { key: 'k'.repeat(256), enabled: true } });
    expect(key.reply[4]).toEqual({ status: 'error', response: { reason: 'InvalidJoinPayload: config.presence.key: at most 255 bytes' } });
    const { joinRef } = await raw.join('ev', { broadcast: { ack: true, self: false } });
    raw.send([joinRef, '77', 'realtime:ev', 'broadcast', { type: 'broadcast', event: 'e'.repeat(256), payload: {} }]);
    const evReply = await raw.waitFrame((f) => isReply(f) && f[1] === '77', 'reply to the long event');
    expect((evReply as unknown[])[4]).toEqual({ status: 'error', response: { reason: 'broadcast event names are at most 255 bytes' } });
    raw.close();
  });
});
