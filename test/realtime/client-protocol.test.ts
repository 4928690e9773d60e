// The unmodified supabase-js 2.119 client against a running gateway: connect, join,
// heartbeats, broadcast (self, ack, binary), presence, leave, REST fallbacks, reconnect.
// Follows the compatibility list of reference/supabase-realtime-protocol.md §9.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RealtimeChannel } from '@supabase/supabase-js';
import type { TestGateway } from '../helpers/gateway.js';
import type { RealtimeSocket } from '../../src/realtime/socket.js';
import { closeClients, joined, RawClient, sleep, startRealtimeGateway, subscribe, supabase, waitFor } from './helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startRealtimeGateway();
});
afterEach(closeClients);
afterAll(() => gw.stop());

type Broadcast = { type: string; event: string; payload: unknown };

function collect<T>(channel: RealtimeChannel, type: 'broadcast' | 'presence', event: string): T[] {
  const got: T[] = [];
  channel.on(type as 'broadcast', { event }, (p: unknown) => got.push(p as T));
  return got;
}

describe('connection and join', () => {
  it('connects at /realtime/v1/websocket with apikey and vsn 2.0.0, joins, and answers heartbeats', async () => {
    const statuses: string[] = [];
    const client = supabase(gw, gw.keys.anon, { heartbeatIntervalMs: 150, heartbeatCallback: (s) => statuses.push(s) });
    expect(client.realtime.endpointURL()).toBe(`${gw.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${gw.keys.anon}&vsn=2.0.0`);
    const { status } = await subscribe(client.channel('room1'));
    expect(status).toBe('SUBSCRIBED');
    expect(client.realtime.connectionState()).toBe('open');
    expect(gw.gateway.connections.count('ws')).toBe(1);
    await waitFor(() => statuses.filter((s) => s === 'ok').length >= 3, 'three heartbeat replies');
    expect(statuses).not.toContain('timeout');
    expect(statuses).not.toContain('error');
  });

  it('replies to a join with postgres_changes: [] and the join ref, as the real server does', async () => {
    const raw = await RawClient.connect(gw);
    const { joinRef, reply } = await raw.join('room-raw');
    expect(reply).toEqual([joinRef, joinRef, 'realtime:room-raw', 'phx_reply', { status: 'ok', response: { postgres_changes: [] } }]);
    raw.send([null, '99', 'phoenix', 'heartbeat', {}]);
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[1] === '99', 'heartbeat reply')).toEqual([null, '99', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
    raw.close();
  });

  it('rejoins after the server drops the socket: the client reconnects and its presence comes back', async () => {
    const watcher = supabase(gw);
    const seen = watcher.channel('rejoin-room', { config: { presence: { key: 'watcher' } } });
    const leaves = collect<{ key: string }>(seen, 'presence', 'leave');
    await joined(seen);
    const member = supabase(gw);
    const channel = member.channel('rejoin-room', { config: { presence: { key: 'member' } } });
    const statuses: string[] = [];
    channel.subscribe((s) => {
      statuses.push(s);
      if (s === 'SUBSCRIBED') void channel.track({ here: true });
    });
    await waitFor(() => seen.presenceState().member, 'member present');
    // Drop the member's socket from the server side.
    const sockets = [...gw.gateway.connections.connections()] as RealtimeSocket[];
    const socket = sockets.find((s) => s.channels.get('realtime:rejoin-room')?.presenceKey === 'member')!;
    socket.closeWith(1011, 'test drop');
    await waitFor(() => leaves.some((l) => l.key === 'member'), 'member leave after the drop');
    await waitFor(() => statuses.filter((s) => s === 'SUBSCRIBED').length >= 2, 'rejoin after reconnect', 10_000);
    await waitFor(() => seen.presenceState().member, 'member present again');
    expect(statuses).toContain('CHANNEL_ERROR');
  });
});

describe('broadcast', () => {
  it('relays a client broadcast to the others (binary kind 3 in, kind 4 out) but not to the sender unless self', async () => {
    const a = supabase(gw).channel('bc-room');
    const aGot = collect<Broadcast>(a, 'broadcast', 'cursor');
    await joined(a);
    const b = supabase(gw).channel('bc-room');
    const bGot = collect<Broadcast>(b, 'broadcast', 'cursor');
    const bAll = collect<Broadcast>(b, 'broadcast', '*');
    await joined(b);
    const selfish = supabase(gw).channel('bc-room', { config: { broadcast: { self: true } } });
    const selfGot = collect<Broadcast>(selfish, 'broadcast', 'cursor');
    await joined(selfish);
    const raw = await RawClient.connect(gw);
    await raw.join('bc-room');

    expect(await a.send({ type: 'broadcast', event: 'cursor', payload: { x: 1, y: 2 } })).toBe('ok');
    await waitFor(() => bGot.length === 1 && bAll.length === 1 && selfGot.length === 1, 'deliveries');
    expect(bGot[0]).toEqual({ type: 'broadcast', event: 'cursor', payload: { x: 1, y: 2 } });
    expect(bAll[0]).toEqual(bGot[0]);
    expect(await selfish.send({ type: 'broadcast', event: 'cursor', payload: { from: 'self' } })).toBe('ok');
    await waitFor(() => selfGot.length === 2, 'self delivery');
    expect(selfGot[1]!.payload).toEqual({ from: 'self' });
    await sleep(100);
    expect(aGot.map((m) => m.payload)).toEqual([{ from: 'self' }]); // A never sees its own message

    // On the wire: kind 4, `04 len(topic) len(event) 00 01 | topic | event | json`.
    const frame = (await raw.waitFrame((f) => 'binary' in f, 'binary broadcast')) as { binary: Buffer };
    const expected = Buffer.concat([Buffer.from([4, 'realtime:bc-room'.length, 'cursor'.length, 0, 1]), Buffer.from('realtime:bc-room'), Buffer.from('cursor'), Buffer.from('{"x":1,"y":2}')]);
    expect(frame.binary.equals(expected)).toBe(true);
    raw.close();
  });

  it('acks a broadcast when the channel asked for ack, and resolves ok immediately without', async () => {
    const acked = supabase(gw).channel('ack-room', { config: { broadcast: { ack: true } } });
    await joined(acked);
    const raw = await RawClient.connect(gw);
    const { joinRef } = await raw.join('ack-room', { broadcast: { ack: true, self: false } });
    raw.sendBinary(Buffer.concat([Buffer.from([3, joinRef.length, 2, 'realtime:ack-room'.length, 1, 0, 1]), Buffer.from(joinRef), Buffer.from('77'), Buffer.from('realtime:ack-room'), Buffer.from('e'), Buffer.from('{}')]));
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[1] === '77', 'ack')).toEqual([joinRef, '77', 'realtime:ack-room', 'phx_reply', { status: 'ok', response: {} }]);
    expect(await acked.send({ type: 'broadcast', event: 'e', payload: { n: 1 } })).toBe('ok');
    const plain = supabase(gw).channel('ack-room');
    await joined(plain);
    expect(await plain.send({ type: 'broadcast', event: 'e', payload: { n: 2 } })).toBe('ok');
    raw.close();
  });

  it('carries an ArrayBuffer payload as raw bytes', async () => {
    const a = supabase(gw).channel('bin-room');
    await joined(a);
    const b = supabase(gw).channel('bin-room');
    const got = collect<{ payload: ArrayBuffer }>(b, 'broadcast', 'bin');
    await joined(b);
    expect(await a.send({ type: 'broadcast', event: 'bin', payload: new Uint8Array([1, 2, 3]).buffer })).toBe('ok');
    await waitFor(() => got.length === 1, 'binary delivery');
    expect(got[0]!.payload).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(got[0]!.payload)]).toEqual([1, 2, 3]);
  });

  it('delivers between a 1.0.0 client and a 2.0.0 client in both directions', async () => {
    const v1 = supabase(gw, gw.keys.anon, { vsn: '1.0.0' }).channel('mixed-room');
    const v1Got = collect<Broadcast>(v1, 'broadcast', '*');
    await joined(v1);
    const v2 = supabase(gw).channel('mixed-room');
    const v2Got = collect<Broadcast>(v2, 'broadcast', '*');
    await joined(v2);
    expect(await v1.send({ type: 'broadcast', event: 'from-v1', payload: { a: 1 } })).toBe('ok');
    expect(await v2.send({ type: 'broadcast', event: 'from-v2', payload: { b: 2 } })).toBe('ok');
    await waitFor(() => v1Got.length === 1 && v2Got.length === 1, 'cross-version deliveries');
    expect(v2Got[0]).toEqual({ type: 'broadcast', event: 'from-v1', payload: { a: 1 } });
    expect(v1Got[0]).toEqual({ type: 'broadcast', event: 'from-v2', payload: { b: 2 } });
  });
});

describe('presence', () => {
  it('tracks, syncs, joins, updates, untracks and leaves with Phoenix Presence shapes', async () => {
    const a = supabase(gw).channel('pres-room', { config: { presence: { key: 'user-1' } } });
    const aJoins = collect<{ key: string; newPresences: unknown[] }>(a, 'presence', 'join');
    const aLeaves = collect<{ key: string; leftPresences: { name: string }[] }>(a, 'presence', 'leave');
    const aSyncs = collect<unknown>(a, 'presence', 'sync');
    await joined(a);
    await waitFor(() => aSyncs.length >= 1, 'initial sync from presence_state');
    const b = supabase(gw).channel('pres-room', { config: { presence: { key: 'user-2' } } });
    b.on('presence', { event: 'sync' }, () => undefined);
    await joined(b);

    expect(await a.track({ name: 'alice', online_at: 'T1' })).toBe('ok');
    expect(await b.track({ name: 'bob', online_at: 'T2' })).toBe('ok');
    await waitFor(() => Object.keys(a.presenceState()).length === 2 && Object.keys(b.presenceState()).length === 2, 'both present everywhere');
    const state = a.presenceState() as Record<string, { name: string; online_at: string; presence_ref: string }[]>;
    expect(Object.keys(state).sort()).toEqual(['user-1', 'user-2']);
    expect(state['user-2']).toEqual([{ name: 'bob', online_at: 'T2', presence_ref: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/) }]);
    expect(b.presenceState()).toEqual(a.presenceState());
    expect(aJoins.find((j) => j.key === 'user-2')!.newPresences).toEqual([{ name: 'bob', online_at: 'T2', presence_ref: state['user-2']![0]!.presence_ref }]);

    // Tracking again with another payload updates the meta: one meta with the new payload.
    expect(await b.track({ name: 'bob', online_at: 'T3' })).toBe('ok');
    await waitFor(() => (a.presenceState() as Record<string, { online_at: string }[]>)['user-2']?.[0]?.online_at === 'T3', 'updated meta');
    expect((a.presenceState() as Record<string, unknown[]>)['user-2']).toHaveLength(1);
    // The same payload again is a no-op that still answers ok.
    const before = JSON.stringify(a.presenceState());
    expect(await b.track({ name: 'bob', online_at: 'T3' })).toBe('ok');
    await sleep(100);
    expect(JSON.stringify(a.presenceState())).toBe(before);

    expect(await b.untrack()).toBe('ok');
    await waitFor(() => aLeaves.some((l) => l.key === 'user-2'), 'leave after untrack');
    expect(aLeaves.find((l) => l.key === 'user-2')!.leftPresences[0]!.name).toBe('bob');
    expect(Object.keys(a.presenceState())).toEqual(['user-1']);
  });

  it('sends presence_state to a channel whose track enabled presence after it joined without', async () => {
    const other = await RawClient.connect(gw);
    const o = await other.join('late-presence', { presence: { key: 'early', enabled: true } });
    other.send([o.joinRef, '60', 'realtime:late-presence', 'presence', { type: 'presence', event: 'track', payload: { who: 'early' } }]);
    await other.waitFrame((f) => Array.isArray(f) && f[1] === '60', 'track reply');
    const raw = await RawClient.connect(gw);
    const { joinRef } = await raw.join('late-presence', { presence: { key: 'late', enabled: false } });
    expect(raw.frames.some((f) => Array.isArray(f) && f[3] === 'presence_state')).toBe(false);
    raw.send([joinRef, '61', 'realtime:late-presence', 'presence', { type: 'presence', event: 'track', payload: { who: 'late' } }]);
    const state = (await raw.waitFrame((f) => Array.isArray(f) && f[3] === 'presence_state', 'presence_state after track')) as unknown[];
    expect(Object.keys(state[4] as object).sort()).toEqual(['early', 'late']);
    other.close();
    raw.close();
  });

  it('keeps several metas under one key and drops one when its channel leaves', async () => {
    const watcher = supabase(gw).channel('multi-room', { config: { presence: { key: 'watcher' } } });
    watcher.on('presence', { event: 'sync' }, () => undefined);
    await joined(watcher);
    const tabs = [supabase(gw), supabase(gw)];
    const channels = tabs.map((c) => c.channel('multi-room', { config: { presence: { key: 'same-user' } } }));
    for (const [i, ch] of channels.entries()) {
      await joined(ch);
      expect(await ch.track({ tab: i })).toBe('ok');
    }
    await waitFor(() => (watcher.presenceState() as Record<string, unknown[]>)['same-user']?.length === 2, 'two metas');
    expect(await tabs[0]!.removeChannel(channels[0]!)).toBe('ok');
    await waitFor(() => (watcher.presenceState() as Record<string, unknown[]>)['same-user']?.length === 1, 'one meta left');
    expect((watcher.presenceState() as Record<string, { tab: number }[]>)['same-user']![0]!.tab).toBe(1);
  });

  it('removes the member of a socket that dies without a goodbye, and of one that falls silent', async () => {
    const short = await startRealtimeGateway({ realtimeIdleTimeoutMs: 1500 });
    try {
      // The watcher heartbeats well within the idle timeout, so only the silent socket is closed.
      const watcher = supabase(short, short.keys.anon, { heartbeatIntervalMs: 200 }).channel('death-room', { config: { presence: { key: 'watcher' } } });
      const leaves = collect<{ key: string }>(watcher, 'presence', 'leave');
      await joined(watcher);
      const dead = await RawClient.connect(short);
      const silent = await RawClient.connect(short);
      for (const [raw, key] of [
        [dead, 'dead'],
        [silent, 'silent'],
      ] as const) {
        const { joinRef } = await raw.join('death-room', { presence: { key, enabled: true } });
        raw.send([joinRef, '50', 'realtime:death-room', 'presence', { type: 'presence', event: 'track', payload: { key } }]);
      }
      await waitFor(() => Object.keys(watcher.presenceState()).length === 2, 'both raw members present');
      dead.ws.terminate(); // TCP gone, no close frame
      await waitFor(() => leaves.some((l) => l.key === 'dead'), 'dead member leaves');
      // The silent one sends no heartbeat: the server closes it after the idle timeout.
      expect((await silent.waitClose(4000)).code).toBe(1000);
      await waitFor(() => leaves.some((l) => l.key === 'silent'), 'silent member leaves');
      expect(watcher.presenceState()).toEqual({});
    } finally {
      await closeClients();
      await short.stop();
    }
  });
});

describe('leave', () => {
  it('removeChannel sends phx_leave: ok, CLOSED, and the others see the member leave', async () => {
    const watcher = supabase(gw).channel('leave-room', { config: { presence: { key: 'w' } } });
    const leaves = collect<{ key: string }>(watcher, 'presence', 'leave');
    await joined(watcher);
    const client = supabase(gw);
    const ch = client.channel('leave-room', { config: { presence: { key: 'leaver' } } });
    const { statuses } = await subscribe(ch);
    expect(await ch.track({ hi: 1 })).toBe('ok');
    await waitFor(() => watcher.presenceState().leaver, 'leaver present');
    expect(await client.removeChannel(ch)).toBe('ok');
    expect(statuses.map((s) => s.status)).toEqual(['SUBSCRIBED', 'CLOSED']);
    await waitFor(() => leaves.some((l) => l.key === 'leaver'), 'leave event');

    const raw = await RawClient.connect(gw);
    const { joinRef } = await raw.join('leave-raw');
    raw.send([joinRef, '40', 'realtime:leave-raw', 'phx_leave', {}]);
    await raw.waitFrame((f) => Array.isArray(f) && f[3] === 'phx_close', 'phx_close');
    const frames = raw.frames.filter((f) => Array.isArray(f) && f[2] === 'realtime:leave-raw').slice(1);
    expect(frames).toEqual([
      [joinRef, '40', 'realtime:leave-raw', 'phx_reply', { status: 'ok', response: {} }],
      [joinRef, joinRef, 'realtime:leave-raw', 'phx_close', {}],
    ]);
    // A leave for a topic that is not joined is simply ok.
    raw.send([null, '41', 'realtime:never-joined', 'phx_leave', {}]);
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[1] === '41', 'leave reply')).toEqual([null, '41', 'realtime:never-joined', 'phx_reply', { status: 'ok', response: {} }]);
    raw.close();
  });
});

describe('metrics', () => {
  it('counts channels, presence members, joins, messages in and out, and delivery latency for transport ws', async () => {
    const own = await startRealtimeGateway();
    const value = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
      const m = (await own.gateway.metrics.registry.getSingleMetric(name)!.get()) as { values: { value: number; labels: Record<string, string | number>; metricName?: string }[] };
      return m.values.filter((v) => (!v.metricName || v.metricName === name || v.metricName.endsWith('_count')) && Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);
    };
    try {
      const a = supabase(own).channel('m-room', { config: { presence: { key: 'a' } } });
      const b = supabase(own).channel('m-room');
      const got: unknown[] = [];
      b.on('broadcast', { event: 'e' }, (p: unknown) => got.push(p));
      await joined(a);
      await joined(b);
      expect(await a.track({ x: 1 })).toBe('ok');
      expect(await a.send({ type: 'broadcast', event: 'e', payload: {} })).toBe('ok');
      await waitFor(() => got.length === 1, 'delivery');
      expect(await value('fanout_realtime_channels')).toBe(2);
      expect(await value('fanout_presence_members')).toBe(1);
      expect(await value('fanout_realtime_joins_total', { result: 'ok' })).toBe(2);
      expect(await value('fanout_messages_total', { transport: 'ws', direction: 'in' })).toBeGreaterThanOrEqual(4);
      expect(await value('fanout_messages_total', { transport: 'ws', direction: 'out' })).toBeGreaterThanOrEqual(4);
      expect(await value('fanout_bytes_total', { transport: 'ws', direction: 'out' })).toBeGreaterThan(100);
      expect(await value('fanout_delivery_latency_seconds', { transport: 'ws' })).toBeGreaterThanOrEqual(1);
      await closeClients();
      await waitFor(async () => (await value('fanout_realtime_channels')) === 0 && (await value('fanout_presence_members')) === 0, 'gauges back to zero');
    } finally {
      await own.stop();
    }
  });
});

describe('REST broadcast from the client', () => {
  it('send() on an unjoined channel falls back to POST /api/broadcast and arrives as a JSON broadcast frame', async () => {
    const listener = supabase(gw).channel('rest-room');
    const got = collect<Broadcast>(listener, 'broadcast', 'news');
    await joined(listener);
    const raw = await RawClient.connect(gw);
    await raw.join('rest-room');
    const sender = supabase(gw).channel('rest-room');
    expect(await sender.send({ type: 'broadcast', event: 'news', payload: { via: 'rest' } })).toBe('ok');
    await waitFor(() => got.length === 1, 'REST delivery');
    expect(got[0]).toEqual({ type: 'broadcast', event: 'news', payload: { via: 'rest' } });
    expect(await raw.waitFrame((f) => Array.isArray(f) && f[3] === 'broadcast', 'text broadcast frame')).toEqual([
      null,
      null,
      'realtime:rest-room',
      'broadcast',
      { type: 'broadcast', event: 'news', payload: { via: 'rest' } },
    ]);

    expect(await sender.httpSend('single', { a: 1 })).toEqual({ success: true });
    await waitFor(() => got.length === 1 && raw.frames.some((f) => 'binary' in f), 'single-endpoint delivery');
    const bin = (raw.frames.find((f) => 'binary' in f) as { binary: Buffer }).binary;
    expect(bin[0]).toBe(4); // kind 4, as the real server sends the single endpoint's messages
    expect(bin.subarray(bin.length - 7).toString()).toBe('{"a":1}');
    raw.close();
  });
});
