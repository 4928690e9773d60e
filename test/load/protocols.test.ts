// The wire parsers the drivers use: SSE per WHATWG (the client library's parser), Phoenix v2 frames per the spec.
import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from '../../src/client/sse-parser.js';
import { decodeFrame, encodeBroadcastPush, encodeText } from '../../src/load/protocol/phoenix.js';
import { commentBody, parseCommentBody } from '../../src/load/drivers/realtime-streams.js';
import { parsePrometheusText, parseProcStatCpuSeconds } from '../../src/load/sampler.js';

function parse(chunks: string[]): { events: SseEvent[]; comments: string[]; retry: number[] } {
  const out = { events: [] as SseEvent[], comments: [] as string[], retry: [] as number[] };
  const p = new SseParser({ event: (e) => out.events.push(e), comment: (c) => out.comments.push(c), retry: (r) => out.retry.push(r) });
  for (const c of chunks) p.feed(c);
  return out;
}

describe('SSE parser', () => {
  it('parses id, event, multi-line data, comments and retry', () => {
    const r = parse(['\ufeffretry: 2000\n: hb\n\nid: 7\nevent: progress\ndata: {"a":1,\ndata:  "b":2}\n\n']);
    expect(r.retry).toEqual([2000]);
    expect(r.comments).toEqual(['hb']);
    expect(r.events).toEqual([{ event: 'progress', data: '{"a":1,\n "b":2}', id: '7', lastEventId: '7', retry: undefined }]);
  });

  it('handles CRLF and CR line endings split across chunks, and fields split mid-line', () => {
    const r = parse(['id: 1\r', '\ndata: x\r\r', 'data: y\rda', 'ta: z\r\n\r\n']);
    // The id in effect persists across events that carry none (what a reconnect sends as Last-Event-ID).
    expect(r.events.map((e) => [e.id, e.lastEventId, e.data])).toEqual([
      ['1', '1', 'x'],
      [undefined, '1', 'y\nz'],
    ]);
  });

  it('does not dispatch events without data, ignores ids with NUL and non-numeric retry', () => {
    const r = parse(['event: x\n\nid: a\0b\nretry: 1s\ndata: d\n\n']);
    expect(r.events).toEqual([{ event: 'message', data: 'd', id: undefined, lastEventId: '', retry: undefined }]);
    expect(r.retry).toEqual([]);
  });
});

describe('Phoenix v2 frames', () => {
  it('encodes a kind-3 broadcast push byte for byte as realtime-js does', () => {
    const buf = encodeBroadcastPush('6', '8', 'realtime:room1', 'cursor', { x: 1, y: 2 });
    const header = [...buf.subarray(0, 7)];
    expect(header).toEqual([3, 1, 1, 14, 6, 0, 1]);
    expect(buf.subarray(7).toString()).toBe('68realtime:room1cursor{"x":1,"y":2}');
  });

  it('decodes a kind-4 broadcast (the captured frame) and text frames', () => {
    const kind4 = Buffer.concat([Buffer.from([4, 14, 6, 0, 1]), Buffer.from('realtime:room1cursor{"x":1,"y":2}')]);
    expect(decodeFrame(kind4, true)).toEqual({ joinRef: null, ref: null, topic: 'realtime:room1', event: 'broadcast', payload: { type: 'broadcast', event: 'cursor', payload: { x: 1, y: 2 } } });
    const text = encodeText('1', '1', 'realtime:r', 'phx_reply', { status: 'ok', response: {} });
    expect(decodeFrame(Buffer.from(text), false)).toMatchObject({ joinRef: '1', ref: '1', event: 'phx_reply', payload: { status: 'ok' } });
    expect(() => decodeFrame(Buffer.from([2, 0, 0]), true)).toThrow(/kind 2/);
    expect(() => decodeFrame(Buffer.from('{"a":1}'), false)).toThrow(/5-element/);
  });

  it('round-trips the stamp carried in comment bodies, including stream names with colons', () => {
    const stamp = { s: 'c:lt1-p0', seq: 42, t: 1700000000123 };
    expect(parseCommentBody(commentBody(stamp))).toEqual(stamp);
    expect(parseCommentBody('hello')).toBeUndefined();
    expect(parseCommentBody('lt:x:y:z')).toBeUndefined();
  });
});

describe('server sampling parsers', () => {
  it('reads Prometheus text with labels', () => {
    const s = parsePrometheusText('# HELP x\nprocess_cpu_seconds_total 12.5\nfanout_connections{transport="sse"} 10\nfanout_connections{transport="ws"} 3\nbad line\n');
    expect(s.get('process_cpu_seconds_total')?.[0]?.value).toBe(12.5);
    expect(s.get('fanout_connections')?.map((x) => [x.labels.transport, x.value])).toEqual([
      ['sse', 10],
      ['ws', 3],
    ]);
  });

  it('reads utime+stime from /proc/<pid>/stat even when the process name has spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[11] = '250'; // utime (field 14)
    fields[12] = '50'; // stime (field 15)
    const secs = parseProcStatCpuSeconds(`123 (node (a b)) ${fields.join(' ')}`);
    expect(secs * 100).toBeCloseTo(300, 0); // 300 ticks at CLK_TCK 100
  });
});
