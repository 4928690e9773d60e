// Bad input on the WebSocket: malformed text and binary frames, oversized frames,
// unknown events and topics, stale join refs and duplicate joins. The offender gets an
// error reply or a close with a reason; the gateway and every other socket carry on.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { publishBroadcast } from '../../src/realtime/channel-topics.js';
import { closeClients, joined, RawClient, sleep, startRealtimeGateway, subscribe, supabase, userBroadcastPush, waitFor } from './helpers.js';

let gw: TestGateway;
let witness: RawClient;
let witnessRef = 1000;

beforeAll(async () => {
  gw = await startRealtimeGateway({ realtimeMaxFrameBytes: 64 * 1024 });
  witness = await RawClient.connect(gw);
});
afterEach(async () => {
  await closeClients();
  // After every case the witness socket still gets heartbeat replies: nobody else was affected.
  const ref = String(++witnessRef);
  witness.send([null, ref, 'phoenix', 'heartbeat', {}]);
  await witness.waitFrame((f) => Array.isArray(f) && f[1] === ref, 'witness heartbeat reply');
  expect(witness.closed).toBeUndefined();
});
afterAll(async () => {
  witness.close();
  await gw.stop();
});

async function closedBy(frame: string | Buffer, vsn = '2.0.0'): Promise<{ code: number; reason: string }> {
  const raw = await RawClient.connect(gw, gw.keys.anon, vsn);
  if (typeof frame === 'string') raw.send(frame);
  else raw.sendBinary(frame);
  return raw.waitClose();
}

describe('frames that cannot be understood close the socket with a reason', () => {
  it('text that is not JSON → 1007', async () => {
    const closed = await closedBy('{"oops"');
    expect(closed.code).toBe(1007);
    expect(closed.reason).toMatch(/^malformed frame: not valid JSON/);
  });

  it('a v2 frame that is not a 5-element array, or a v1 frame that is not an object → 1007', async () => {
    expect(await closedBy('{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}')).toEqual({
      code: 1007,
      reason: 'malformed frame: serializer 2.0.0 expects a JSON array [join_ref, ref, topic, event, payload]',
    });
    expect((await closedBy('[null,"1","phoenix","heartbeat",{}]', '1.0.0')).code).toBe(1007);
    expect((await closedBy('[null,"1",42,"heartbeat",{}]')).reason).toBe('malformed frame: topic must be a string and refs strings or null');
  });

  it('a binary frame of another kind → 1003; a truncated kind 3 → 1007; binary on serializer 1.0.0 → 1003', async () => {
    expect(await closedBy(Buffer.from([0, 1, 2, 3, 4, 5, 6, 7]))).toEqual({ code: 1003, reason: 'unsupported binary frame kind 0 (only kind 3, user broadcast push, is accepted)' });
    expect((await closedBy(Buffer.from([3, 200, 0, 0, 1, 0, 1, 65]))).code).toBe(1007);
    expect((await closedBy(Buffer.from([3, 1, 2]))).code).toBe(1007);
    expect((await closedBy(userBroadcastPush('1', '2', 'realtime:x', 'e', Buffer.from('{}')), '1.0.0')).code).toBe(1003);
  });

  it('a frame over the size limit → 1009', async () => {
    const closed = await closedBy(JSON.stringify([null, '1', 'realtime:big', 'broadcast', { payload: 'z'.repeat(70 * 1024) }]));
    expect(closed.code).toBe(1009);
  });

  it('invalid UTF-8 in a text frame → 1007', async () => {
    const raw = await RawClient.connect(gw);
    raw.ws.send(Buffer.from([0x5b, 0xff, 0xfe, 0x5d]), { binary: false });
    expect((await raw.waitClose()).code).toBe(1007);
  });
});

describe('messages that are understood but wrong get an error reply and the socket stays', () => {
  it('a message without an event, or with a non-object payload, gets an error reply naming the problem', async () => {
    const raw = await RawClient.connect(gw);
    raw.send(['1', '5', 'realtime:r', '', {}]);
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[1] === '5', 'reply')).toEqual(['1', '5', 'realtime:r', 'phx_reply', { status: 'error', response: { reason: 'malformed message: event must be a non-empty string' } }]);
    raw.send(['1', '6', 'realtime:r', 'phx_join', 'not-an-object']);
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[1] === '6', 'reply')).toEqual(['1', '6', 'realtime:r', 'phx_reply', { status: 'error', response: { reason: 'malformed message: payload of phx_join must be a JSON object' } }]);
    const { reply } = await raw.join('still-works');
    expect(reply[4]).toMatchObject({ status: 'ok' });
    expect(raw.closed).toBeUndefined();
    raw.close();
  });

  it('messages for a topic that is not joined get "unmatched topic"; unknown events on a joined channel are ignored', async () => {
    const raw = await RawClient.connect(gw);
    raw.send(['1', '7', 'realtime:nowhere', 'broadcast', { type: 'broadcast', event: 'e', payload: {} }]);
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[1] === '7', 'reply')).toEqual([null, '7', 'realtime:nowhere', 'phx_reply', { status: 'error', response: { reason: 'unmatched topic' } }]);
    const { joinRef } = await raw.join('unknown-events', { broadcast: { ack: true, self: true } });
    raw.send([joinRef, '8', 'realtime:unknown-events', 'do_something_odd', { x: 1 }]);
    raw.send([joinRef, '9', 'realtime:unknown-events', 'broadcast', { type: 'broadcast', event: 'after', payload: { y: 2 } }]);
    await raw.waitFrame((f) => Array.isArray(f) && f[1] === '9', 'ack of the broadcast after the unknown event');
    await sleep(50);
    expect(raw.frames.some((f) => Array.isArray(f) && f[1] === '8')).toBe(false);
    expect(raw.frames).toContainEqual([null, null, 'realtime:unknown-events', 'broadcast', { type: 'broadcast', event: 'after', payload: { y: 2 } }]);
    raw.close();
  });

  it('a kind-3 push whose JSON payload is not JSON is refused (error ack) and never reaches others', async () => {
    const listener = supabase(gw).channel('bad-json');
    const got: unknown[] = [];
    listener.on('broadcast', { event: '*' }, (p: unknown) => got.push(p));
    await joined(listener);
    const raw = await RawClient.connect(gw);
    const { joinRef } = await raw.join('bad-json', { broadcast: { ack: true, self: false } });
    raw.sendBinary(userBroadcastPush(joinRef, '11', 'realtime:bad-json', 'e', Buffer.from('{not json')));
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[1] === '11', 'error ack')).toEqual([
      joinRef,
      '11',
      'realtime:bad-json',
      'phx_reply',
      { status: 'error', response: { reason: 'broadcast payload with JSON encoding is not valid JSON' } },
    ]);
    raw.sendBinary(userBroadcastPush(joinRef, '12', 'realtime:bad-json', 'e', Buffer.from('{"fine":true}')));
    await waitFor(() => got.length === 1, 'the valid one');
    expect(got).toEqual([{ type: 'broadcast', event: 'e', payload: { fine: true } }]);
    raw.close();
  });

  it('presence with a non-map payload or an unknown presence event gets an error reply', async () => {
    const raw = await RawClient.connect(gw);
    const { joinRef } = await raw.join('bad-presence', { presence: { key: 'k', enabled: true } });
    raw.send([joinRef, '20', 'realtime:bad-presence', 'presence', { type: 'presence', event: 'track', payload: [1, 2] }]);
    raw.send([joinRef, '21', 'realtime:bad-presence', 'presence', { type: 'presence', event: 'wave' }]);
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[1] === '20', 'reply')).toEqual([joinRef, '20', 'realtime:bad-presence', 'phx_reply', { status: 'error', response: { reason: 'Presence track payload must be a map' } }]);
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[1] === '21', 'reply')).toEqual([joinRef, '21', 'realtime:bad-presence', 'phx_reply', { status: 'error', response: {} }]);
    raw.close();
  });
});

describe('failures inside the gateway', () => {
  it('turn into phx_error on the channel (the client rejoins), never into a crash of the process', async () => {
    const hub = gw.gateway.hub;
    const publish = hub.publish.bind(hub);
    const client = supabase(gw);
    const ch = client.channel('crashy');
    const { statuses } = await subscribe(ch);
    let failures = 1;
    hub.publish = (...args: Parameters<typeof hub.publish>) => {
      if (args[1] === 'broadcast' && failures-- > 0) throw new Error('injected failure');
      return publish(...args);
    };
    try {
      await ch.send({ type: 'broadcast', event: 'boom', payload: {} });
      await waitFor(() => statuses.some((s) => s.status === 'CHANNEL_ERROR'), 'channel error');
      expect(statuses.find((s) => s.status === 'CHANNEL_ERROR')!.error?.message).toBe('channel error: transport failure');
      await waitFor(() => statuses.filter((s) => s.status === 'SUBSCRIBED').length === 2, 'rejoin', 5000);
      expect(await ch.send({ type: 'broadcast', event: 'fine', payload: {} })).toBe('ok');
    } finally {
      hub.publish = publish;
    }
  });
});

describe('unserializable payloads from inside the gateway', () => {
  it('are skipped without breaking the publisher or the channel', async () => {
    const raw = await RawClient.connect(gw);
    await raw.join('bigint-room');
    expect(() => publishBroadcast(gw.gateway.hub, 'bigint-room', false, { event: 'bad', payload: { n: 1n }, frame: 'text' })).not.toThrow();
    void publishBroadcast(gw.gateway.hub, 'bigint-room', false, { event: 'good', payload: { n: 1 }, frame: 'text' });
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[3] === 'broadcast', 'the good one')).toEqual([null, null, 'realtime:bigint-room', 'broadcast', { type: 'broadcast', event: 'good', payload: { n: 1 } }]);
    raw.close();
  });
});

describe('join refs', () => {
  it('a second join of a joined topic closes the first; messages with the old join ref are dropped', async () => {
    const raw = await RawClient.connect(gw);
    const first = await raw.join('dup-room', { broadcast: { ack: true, self: true } });
    const second = await raw.join('dup-room', { broadcast: { ack: true, self: true } });
    expect(raw.frames).toContainEqual([first.joinRef, first.joinRef, 'realtime:dup-room', 'phx_close', {}]);
    expect(second.reply[4]).toMatchObject({ status: 'ok' });
    raw.send([first.joinRef, '30', 'realtime:dup-room', 'broadcast', { type: 'broadcast', event: 'stale', payload: {} }]);
    raw.send([second.joinRef, '31', 'realtime:dup-room', 'broadcast', { type: 'broadcast', event: 'fresh', payload: {} }]);
    await raw.waitFrame((f) => Array.isArray(f) && f[1] === '31', 'ack of the current join');
    await sleep(50);
    expect(raw.frames.some((f) => Array.isArray(f) && f[1] === '30')).toBe(false);
    const events = raw.frames.filter((f) => Array.isArray(f) && f[3] === 'broadcast').map((f) => ((f as unknown[])[4] as { event: string }).event);
    expect(events).toEqual(['fresh']);
    raw.close();
  });
});
