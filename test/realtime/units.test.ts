// Unit tests of the Realtime building blocks: codec, encoders (encode once per format),
// binding ids, rate counters and the presence registry.
import { describe, expect, it } from 'vitest';
import { type HubMessage } from '../../src/core/hub.js';
import { createLocalHub } from '../../src/bus/memory.js';
import { publishBroadcast } from '../../src/realtime/channel-topics.js';
import { decodeBinary, decodeText, encodeUserBroadcast, FrameError } from '../../src/realtime/codec.js';
import { bindingId, canonicalJson, parseJoinPayload, replayRequest } from '../../src/realtime/join-config.js';
import { RateCounter, WindowLimiter } from '../../src/realtime/limits.js';
import { PresenceRegistry } from '../../src/realtime/presence.js';
import { changeFrame, frameFor } from '../../src/realtime/wire.js';
import { userBroadcastPush } from './helpers.js';

describe('codec', () => {
  it('decodes v2 arrays and v1 objects, normalising numeric refs to strings', () => {
    expect(decodeText('["1","2","realtime:a","phx_join",{"x":1}]', '2.0.0')).toEqual({ joinRef: '1', ref: '2', topic: 'realtime:a', event: 'phx_join', payload: { x: 1 } });
    expect(decodeText('{"topic":"phoenix","event":"heartbeat","payload":{},"ref":7}', '1.0.0')).toEqual({ joinRef: null, ref: '7', topic: 'phoenix', event: 'heartbeat', payload: {} });
    expect(() => decodeText('[1,2,3]', '2.0.0')).toThrow(FrameError);
  });

  it('round-trips a realtime-js kind-3 push and builds kind 4 frames', () => {
    const push = decodeBinary(userBroadcastPush('6', '8', 'realtime:room1', 'cursor', Buffer.from('{"x":1,"y":2}'), 1, '{"persist":true}'));
    expect(push).toMatchObject({ joinRef: '6', ref: '8', topic: 'realtime:room1', event: 'cursor', metadata: '{"persist":true}', encoding: 1 });
    expect(push.payload.toString()).toBe('{"x":1,"y":2}');
    // The frame captured from the real client: 04 0e 06 00 01 | topic | event | payload.
    const kind4 = encodeUserBroadcast('realtime:room1', 'cursor', '', 1, Buffer.from('{"x":1,"y":2}'))!;
    expect([...kind4.subarray(0, 5)]).toEqual([4, 0x0e, 6, 0, 1]);
    expect(kind4.subarray(5).toString()).toBe('realtime:room1cursor{"x":1,"y":2}');
    expect(encodeUserBroadcast('realtime:' + 'x'.repeat(300), 'e', '', 1, Buffer.alloc(0))).toBeNull();
  });
});

describe('a text broadcast passes its payload on as received', () => {
  const payloadOf = (frame: string, vsn: '1.0.0' | '2.0.0' = '2.0.0'): string | undefined => decodeText(frame, vsn).broadcastJson;

  it('finds the user payload in v2 and v1 frames, whatever the spacing, escapes and nesting', () => {
    expect(payloadOf('[null,"1","realtime:a","broadcast",{"type":"broadcast","event":"e","payload":{"a":"x\\"}y","b":[1,{"c":"]"}]}}]')).toBe('{"a":"x\\"}y","b":[1,{"c":"]"}]}');
    expect(payloadOf('[ "1" , "2" ,\n "realtime:a" , "broadcast" , { "payload" : { "a" : 1 } , "event" : "e" } ]')).toBe('{ "a" : 1 }');
    expect(payloadOf('{"topic":"realtime:a","event":"broadcast","payload":{"event":"e","payload":[1,"]"]},"ref":"1"}', '1.0.0')).toBe('[1,"]"]');
    expect(payloadOf('[null,null,"realtime:a","broadcast",{"event":"e","payload":-12.5e3}]')).toBe('-12.5e3');
    expect(payloadOf('[null,null,"realtime:a","broadcast",{"event":"e","payload":"s"}]')).toBe('"s"');
  });

  it('takes the last of repeated keys and reads escaped key names, as JSON.parse does', () => {
    expect(payloadOf('[null,null,"realtime:a","broadcast",{"payload":{"a":1},"event":"e","payload":{"b":2}}]')).toBe('{"b":2}');
    expect(payloadOf('[null,null,"realtime:a","broadcast",{"pay\\u006coad":{"z":1},"event":"e"}]')).toBe('{"z":1}');
    expect(payloadOf('[null,null,"realtime:a","broadcast",{"payload_":{"z":1},"event":"e"}]')).toBe('{}');
  });

  it('gives {} without a payload (or a null one), and nothing for other events', () => {
    expect(payloadOf('[null,null,"realtime:a","broadcast",{"event":"e"}]')).toBe('{}');
    expect(payloadOf('[null,null,"realtime:a","broadcast",{"event":"e","payload":null}]')).toBe('{}');
    expect(payloadOf('[null,null,"realtime:a","presence",{"event":"track","payload":{}}]')).toBeUndefined();
  });

  it('agrees with JSON.parse on generated payloads', () => {
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const space = (): string => [' ', '', '\n', '\t ', ''][Math.floor(random() * 5)]!;
    const value = (depth: number): string => {
      const r = random();
      if (depth > 3 || r < 0.3) return [`"q\\"u\\\\o]}te"`, '12.5', 'true', 'null', '"["', '-0', '"\\u005d"'][Math.floor(random() * 7)]!;
      if (r < 0.6) return `[${space()}${Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1)).join(`${space()},${space()}`)}${space()}]`;
      return `{${space()}${Array.from({ length: Math.floor(random() * 4) }, (_, i) => `"k${i}"${space()}:${space()}${value(depth + 1)}`).join(`${space()},${space()}`)}${space()}}`;
    };
    for (let i = 0; i < 200; i++) {
      const payload = value(0);
      const frame = `[${space()}null,${space()}"1",${space()}"realtime:a",${space()}"broadcast",${space()}{${space()}"event":"e",${space()}"payload"${space()}:${space()}${payload}${space()}}${space()}]`;
      const json = payloadOf(frame)!;
      const parsed = JSON.parse(payload) as unknown;
      expect(json).toBe(parsed === null ? '{}' : payload);
    }
  });
});

describe('encode once per wire format', () => {
  it('serializes a broadcast once per format however many sockets receive it', () => {
    const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });
    let msg: HubMessage | undefined;
    hub.subscribe('realtime:r', { deliver: (m) => (msg = m) });
    void publishBroadcast(hub, 'r', false, { event: 'e', payload: { a: 1 }, frame: 'binary' });
    const first = frameFor(msg!, '2.0.0')!;
    expect(first.binary).toBe(true);
    expect(frameFor(msg!, '2.0.0')!.bytes).toBe(first.bytes); // the same Buffer, not a copy
    expect(frameFor(msg!, '1.0.0')!.bytes).toBe(frameFor(msg!, '1.0.0')!.bytes);
    expect(JSON.parse(frameFor(msg!, '1.0.0')!.bytes.toString())).toEqual({ topic: 'realtime:r', event: 'broadcast', payload: { type: 'broadcast', event: 'e', payload: { a: 1 } }, ref: null });
  });

  it('frames private channel messages with the client-visible topic, and skips raw bytes for v1', () => {
    const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });
    let msg: HubMessage | undefined;
    hub.subscribe('realtime-private:p', { deliver: (m) => (msg = m) });
    void publishBroadcast(hub, 'p', true, { event: 'e', payload: Buffer.from([1]), frame: 'binary' });
    expect(frameFor(msg!, '2.0.0')!.bytes.subarray(5, 5 + 'realtime:p'.length).toString()).toBe('realtime:p');
    expect(frameFor(msg!, '1.0.0')).toBeNull();
  });

  it('shares a postgres_changes frame between channels with the same topic and ids', () => {
    const data = { schema: 'public', table: 't', type: 'INSERT', commit_timestamp: 'T', record: { id: 1 }, errors: null };
    expect(changeFrame('2.0.0', 'realtime:a', [1, 2], data)).toBe(changeFrame('2.0.0', 'realtime:a', [1, 2], data));
    expect(JSON.parse(changeFrame('2.0.0', 'realtime:b', [3], data).toString())).toEqual([null, null, 'realtime:b', 'postgres_changes', { ids: [3], data }]);
  });
});

describe('join payload and binding ids', () => {
  it('reads flexible booleans, generates a presence key when empty, and keeps bindings as sent', () => {
    const cfg = parseJoinPayload({ config: { broadcast: { ack: 'TRUE', self: 'false' }, presence: { key: '' }, private: 'true', postgres_changes: [{ event: '*', schema: 'public', select: ['a'] }, null] }, access_token: 'tok' });
    expect(cfg).toMatchObject({ ack: true, self: false, isPrivate: true, accessToken: 'tok', postgresChanges: [{ event: '*', schema: 'public', select: ['a'] }] });
    expect(cfg.presenceKey).toMatch(/^[0-9a-f-]{36}$/);
    expect(parseJoinPayload({}).postgresChanges).toEqual([]);
  });

  it('gives identical params the identical integer id regardless of key order', () => {
    const a = bindingId({ event: 'INSERT', schema: 'public', table: 'todos', filter: 'id=eq.1' });
    expect(bindingId({ filter: 'id=eq.1', table: 'todos', schema: 'public', event: 'INSERT' })).toBe(a);
    expect(bindingId({ event: 'INSERT', schema: 'public', table: 'todos', filter: 'id=eq.2' })).not.toBe(a);
    expect(Number.isInteger(a) && a >= 0 && a < 2 ** 27).toBe(true);
    expect(canonicalJson({ b: [1, { d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[1,{"c":2,"d":1}]}');
  });
});

describe('broadcast replay parameters', () => {
  it("fills Supabase's defaults, refuses non-integers and ignores a replay that is not an object", () => {
    expect(replayRequest({})).toEqual({ since: 0, limit: 10 });
    expect(replayRequest({ since: 1_700_000_000_000, limit: 3 })).toEqual({ since: 1_700_000_000_000, limit: 3 });
    expect(replayRequest({ since: null })).toEqual({ since: 0, limit: 10 });
    expect(replayRequest({ since: 'yesterday' })).toBe('invalid');
    expect(replayRequest({ since: 1, limit: 2.5 })).toBe('invalid');
    expect(replayRequest({ limit: '5' })).toBe('invalid');
    expect(replayRequest(true)).toBeUndefined();
    expect(replayRequest(undefined)).toBeUndefined();
  });
});

describe('rate counters', () => {
  it('trips when the average reaches the limit, measured over at least one second, and clears below it', () => {
    const t0 = 1_000_000;
    const c = new RateCounter(10, 60_000, t0);
    c.add(5);
    expect(c.tick(t0 + 100)).toBe(false); // 5 in the first 100 ms is 5/s, not 50/s
    c.add(6);
    expect(c.tick(t0 + 200)).toBe(true); // 11 within the first second
    expect(c.avg).toBeCloseTo(11);
    expect(c.tick(t0 + 1500)).toBe(false); // 11 over 1.5 s < 10/s
    expect(c.idle).toBe(false);
    expect(c.tick(t0 + 200_000)).toBe(false);
    expect(c.idle).toBe(true); // aged out of the window
  });

  it('averages over the 60 s window once it is full', () => {
    const t0 = 0;
    const c = new RateCounter(100, 60_000, t0);
    for (let s = 1; s <= 120; s++) {
      c.add(50);
      c.tick(t0 + s * 1000);
    }
    expect(c.avg).toBeGreaterThan(45);
    expect(c.avg).toBeLessThan(55);
    expect(c.triggered).toBe(false);
    expect(c.recentRate).toBe(50);
  });

  it('allows N calls per window', () => {
    const w = new WindowLimiter(2, 1000);
    expect([w.take(0), w.take(10), w.take(20), w.take(1001), w.take(1002)]).toEqual([true, true, false, true, true]);
  });
});

describe('presence registry', () => {
  it('publishes joins and leaves as presence_diff and reports the state and member count', () => {
    const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });
    const diffs: unknown[] = [];
    hub.subscribe('realtime:p', { deliver: (m) => diffs.push(m.data) });
    const counts: number[] = [];
    const presence = new PresenceRegistry(hub, (n) => counts.push(n));
    const a = {};
    const b = {};
    presence.track('realtime:p', 'k', a, { v: 1 });
    presence.track('realtime:p', 'k', b, { v: 2 });
    presence.track('realtime:p', 'k', a, { v: 3 });
    const state = presence.state('realtime:p');
    expect(state.k!.metas.map((m) => m.v)).toEqual([3, 2]);
    const update = diffs[2] as { joins: { k: { metas: { phx_ref: string; phx_ref_prev: string }[] } }; leaves: { k: { metas: { phx_ref: string }[] } } };
    expect(update.joins.k.metas[0]!.phx_ref_prev).toBe(update.leaves.k.metas[0]!.phx_ref);
    expect(presence.untrack('realtime:p', 'k', b)).toBe(true);
    expect(presence.untrack('realtime:p', 'k', b)).toBe(false);
    expect(counts).toEqual([1, 2, 1]);
    const json = presence.stateJson('realtime:p');
    expect(presence.stateJson('realtime:p')).toBe(json); // cached until presence changes
    expect(JSON.parse(json)).toEqual(presence.state('realtime:p'));
    presence.track('realtime:p', 'k2', b, { v: 4 });
    expect(Object.keys(JSON.parse(presence.stateJson('realtime:p')) as object)).toEqual(['k', 'k2']);
    expect(presence.size).toBe(2);
  });
});
