// The one function that turns a realtime.messages row into a broadcast, for every form a
// capture path hands a row over in (trigger outbox, WAL decoder text, replay query), and
// the frames it becomes on each serializer.
import { describe, expect, it } from 'vitest';
import { type HubMessage } from '../../src/core/hub.js';
import { createLocalHub } from '../../src/bus/memory.js';
import { databaseBroadcast, messageBody, publishMessageRow } from '../../src/changes/message-broadcast.js';
import { frameFor, replayFrame } from '../../src/realtime/wire.js';

const ID = '0b6e9b8e-3f1c-4f0e-9d61-0c4b5d1e2f3a';

describe('databaseBroadcast', () => {
  it('reads a JSON row as the trigger outbox captures it (to_jsonb of the row)', () => {
    const row = { id: ID, topic: 'room:a', event: 'INSERT', private: true, extension: 'broadcast', payload: { n: 1 }, binary_payload: null };
    expect(databaseBroadcast(row)).toEqual({ subtopic: 'room:a', isPrivate: true, data: { event: 'INSERT', payload: { n: 1 }, id: ID, frame: 'text' } });
  });

  it('reads binary payloads as driver bytes or PostgreSQL hex text, empty included', () => {
    for (const binary of [Buffer.from([0, 255]), new Uint8Array([0, 255]), '\\x00ff', '\\x00FF']) {
      const b = databaseBroadcast({ id: ID, topic: 't', event: 'blob', private: 'f', payload: null, binary_payload: binary });
      expect(b?.isPrivate).toBe(false);
      expect(b?.data.frame).toBe('binary');
      expect([...(b!.data.payload as Buffer)]).toEqual([0, 255]);
    }
    expect(messageBody({ binary_payload: '\\x' })).toEqual({ kind: 'binary', bytes: Buffer.alloc(0) });
    // The binary payload wins, as Supabase's pick_payload has it.
    expect(messageBody({ payload: { a: 1 }, binary_payload: '\\x01' })?.kind).toBe('binary');
  });

  it('is not a broadcast without a payload, topic, event or privacy flag, or from another extension', () => {
    const base = { id: ID, topic: 't', event: 'e', private: true, extension: 'broadcast', payload: { a: 1 } };
    expect(databaseBroadcast(base)).toBeDefined();
    expect(databaseBroadcast({ ...base, payload: null })).toBeUndefined();
    expect(databaseBroadcast({ ...base, payload: null, binary_payload: 'not hex' })).toBeUndefined();
    expect(databaseBroadcast({ ...base, topic: null })).toBeUndefined();
    expect(databaseBroadcast({ ...base, event: null })).toBeUndefined();
    expect(databaseBroadcast({ ...base, private: null })).toBeUndefined();
    expect(databaseBroadcast({ ...base, extension: 'presence' })).toBeUndefined();
    const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });
    expect(publishMessageRow(hub, { ...base, payload: null })).toBeUndefined();
  });
});

describe('frames of a database broadcast', () => {
  const deliver = (row: Record<string, unknown>): HubMessage => {
    const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });
    let msg: HubMessage | undefined;
    hub.subscribe('realtime-private:room:a', { deliver: (m) => (msg = m) });
    void publishMessageRow(hub, { id: ID, topic: 'room:a', event: 'blob', private: true, ...row });
    return msg!;
  };

  it('sends bytes as kind 4 with encoding 0 and meta {id}, and nothing to a v1 socket', () => {
    const msg = deliver({ binary_payload: '\\x0102' });
    const frame = frameFor(msg, '2.0.0')!;
    expect(frame.binary).toBe(true);
    const meta = JSON.stringify({ id: ID });
    expect([...frame.bytes.subarray(0, 5)]).toEqual([4, 'realtime:room:a'.length, 4, meta.length, 0]);
    expect(frame.bytes.subarray(5).toString('latin1')).toBe(`realtime:room:ablob${meta}\u0001\u0002`);
    expect(frameFor(msg, '1.0.0')).toBeNull();
  });

  it('sends JSON as a text broadcast with meta {id} on both serializers', () => {
    const msg = deliver({ payload: { n: 1 } });
    const frame = frameFor(msg, '2.0.0')!;
    expect(frame.binary).toBe(false);
    expect(JSON.parse(frame.bytes.toString())).toEqual([null, null, 'realtime:room:a', 'broadcast', { type: 'broadcast', event: 'blob', payload: { n: 1 }, meta: { id: ID } }]);
    expect(JSON.parse(frameFor(msg, '1.0.0')!.bytes.toString())).toMatchObject({ topic: 'realtime:room:a', event: 'broadcast', payload: { payload: { n: 1 }, meta: { id: ID } } });
  });

  it('replays JSON as text and bytes as kind 4, each marked replayed', () => {
    const json = replayFrame('2.0.0', 'realtime:room:a', { id: ID, event: 'e', body: { kind: 'json', payload: { n: 1 } } })!;
    expect(JSON.parse(json.bytes.toString())[4]).toEqual({ type: 'broadcast', event: 'e', payload: { n: 1 }, meta: { replayed: true, id: ID } });
    const bin = replayFrame('2.0.0', 'realtime:room:a', { id: ID, event: 'e', body: { kind: 'binary', bytes: Buffer.from([7]) } })!;
    expect(bin.binary).toBe(true);
    expect(bin.bytes.subarray(5).toString('latin1')).toBe(`realtime:room:ae{"replayed":true,"id":"${ID}"}\u0007`);
    expect(replayFrame('1.0.0', 'realtime:room:a', { id: ID, event: 'e', body: { kind: 'binary', bytes: Buffer.from([7]) } })).toBeNull();
  });
});
