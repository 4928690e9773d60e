// What crosses the bus comes back as it was sent, binary payloads included (a Realtime
// broadcast's raw bytes and the JSON text it arrived as are Buffers).
import { expect, it } from 'vitest';
import { decodeBody, encodeBody } from '../../src/bus/codec.js';

it('round-trips JSON data and Buffers nested in it', () => {
  const data = { event: 'cursor', payload: Buffer.from([0, 1, 254, 255]), json: Buffer.from('{"x":1}'), nested: [{ b: new Uint8Array([7, 8]) }], text: 'héllo', n: 1.5, nil: null };
  const text = encodeBody({ event: 'broadcast', data, ts: 1700000000123, node: 'n1', ref: 42 });
  const back = decodeBody('realtime:room', 'ep', 0, text);
  expect(back).toMatchObject({ topic: 'realtime:room', epoch: 'ep', offset: 0, event: 'broadcast', ts: 1700000000123, node: 'n1', ref: 42 });
  const d = back.data as typeof data;
  expect(Buffer.isBuffer(d.payload)).toBe(true);
  expect([...d.payload]).toEqual([0, 1, 254, 255]);
  expect(d.json.toString()).toBe('{"x":1}');
  expect([...(d.nested[0]!.b as Uint8Array)]).toEqual([7, 8]);
  expect(d).toMatchObject({ text: 'héllo', n: 1.5, nil: null });
});

it('leaves ordinary objects that merely look similar alone', () => {
  const back = decodeBody('t', 'e', 1, encodeBody({ event: 'e', data: { type: 'Buffer', data: [1, 2] }, ts: 1, node: 'n', ref: 1 }));
  expect(back.data).toEqual({ type: 'Buffer', data: [1, 2] });
});
