// The client's pure parts: the SSE parser at every chunk boundary, the back-off's bounds,
// and a subscription's ordering rules (duplicate, next, gap → fill, reset) with a fake
// host standing in for the gateway.
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/client/backoff.js';
import { SseParser, type SseEvent } from '../../src/client/sse-parser.js';
import { Subscription, type SubscriptionHost } from '../../src/client/subscription.js';
import type { PollAnswer } from '../../src/client/wire.js';
import type { Start } from '../../src/client/position.js';
import type { FanoutMessage, MessageData } from '../../src/client/types.js';

describe('SseParser', () => {
  const STREAM = 'retry: 2000\n\n: ping\n\nid: a:1\nevent: progress\ndata: {"x":1}\n\nevent: multi\ndata: line1\ndata: line2\n\r\nid: a:2\r\nevent: ready\r\ndata: {}\r\n\r\nevent: shutdown\nretry: 700\ndata: {}\n\n';

  const parseIn = (chunks: string[]): { events: SseEvent[]; comments: string[]; retries: number[] } => {
    const out = { events: [] as SseEvent[], comments: [] as string[], retries: [] as number[] };
    const p = new SseParser({ event: (e) => out.events.push(e), comment: (c) => out.comments.push(c), retry: (ms) => out.retries.push(ms) });
    for (const c of chunks) p.feed(c);
    return out;
  };

  it('parses events, comments and retry, whatever the chunking', () => {
    const whole = parseIn([STREAM]);
    expect(whole.events).toEqual([
      { event: 'progress', data: '{"x":1}', id: 'a:1', lastEventId: 'a:1', retry: undefined },
      { event: 'multi', data: 'line1\nline2', id: undefined, lastEventId: 'a:1', retry: undefined },
      { event: 'ready', data: '{}', id: 'a:2', lastEventId: 'a:2', retry: undefined },
      { event: 'shutdown', data: '{}', id: undefined, lastEventId: 'a:2', retry: 700 },
    ]);
    expect(whole.comments).toEqual(['ping']);
    expect(whole.retries).toEqual([2000, 700]);
    // Every split point, and one character at a time (CRLF split across chunks included).
    for (let i = 1; i < STREAM.length; i++) expect(parseIn([STREAM.slice(0, i), STREAM.slice(i)]).events, `split at ${i}`).toEqual(whole.events);
    expect(parseIn([...STREAM]).events).toEqual(whole.events);
  });

  it('holds an unfinished event until its blank line', () => {
    const r = parseIn(['event: progress\ndata: {}\n']);
    expect(r.events).toEqual([]);
  });

  it('drops a half-received event on restart (a new connection) and resumes after the last complete one', () => {
    const events: SseEvent[] = [];
    const p = new SseParser({ event: (e) => events.push(e) });
    p.feed('id: 5\ndata: a\n\nid: 6\ndata: b');
    // Event 6 never completed: Last-Event-ID must still say 5, or the reconnect would skip it.
    expect(p.lastId).toBe('5');
    p.restart();
    p.feed('\ufeffid: 6\ndata: b\n\ndata: c\n\n');
    expect(events.map((e) => [e.data, e.lastEventId])).toEqual([
      ['a', '5'],
      ['b', '6'],
      ['c', '6'],
    ]);
    expect(p.lastId).toBe('6');
  });
});

describe('Backoff', () => {
  it('grows exponentially with jitter between half and all of the step, up to the cap, and resets', () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    expect([1, 2, 3, 4, 5, 6].map(() => low.next())).toEqual([50, 100, 200, 400, 500, 500]);
    const high = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
    expect([1, 2, 3, 4, 5].map(() => high.next())).toEqual([100, 200, 400, 800, 1000]);
    high.reset();
    expect(high.next()).toBe(100);
  });
});

describe('Subscription ordering', () => {
  const E = 'ep';
  const msg = (seq: number, event = 'progress', epoch = E): [FanoutMessage, { epoch: string; offset: number }] => [
    { topic: 'content:x', event, id: `${epoch}:${seq}`, seq, ts: 0, data: { topic: 'content:x', seq, ts: 0 } },
    { epoch, offset: seq },
  ];
  const answer = (seqs: number[], more = false): PollAnswer => ({
    events: seqs.map((seq) => ({ id: `${E}:${seq}`, event: 'progress', data: { topic: 'content:x', seq, ts: 0 } as MessageData })),
    lastEventId: `${E}:${seqs.at(-1) ?? 0}`,
    more,
  });

  function setup(start: Start, polls: PollAnswer[] = []) {
    const asked: string[] = [];
    const host: SubscriptionHost = {
      state: 'open',
      fetchSince: async (_topic, after) => {
        asked.push(typeof after === 'string' ? after : `${after.epoch}:${after.offset}`);
        const next = polls.shift();
        if (!next) throw new Error('no more polls scripted');
        return next;
      },
      release: () => undefined,
      count: () => undefined,
    };
    const sub = new Subscription(host, (t) => t, new Map([['content:x', start]]), true);
    const seen: number[] = [];
    const resets: string[] = [];
    sub.on('message', (m) => void seen.push(m.seq));
    sub.on('reset', (r) => void resets.push(r.reason));
    return { sub, seen, resets, asked };
  }

  it('delivers the next offset and drops what it has seen', () => {
    const { sub, seen } = setup({ epoch: E, offset: 2 });
    for (const n of [1, 2, 3, 3, 4, 2]) sub.deliver(...msg(n));
    expect(seen).toEqual([3, 4]);
    expect(sub.stats).toMatchObject({ messages: 2, duplicates: 4, positions: { 'content:x': `${E}:4` } });
  });

  it('fills a gap with a poll from its position, holding live events meanwhile', async () => {
    const { sub, seen, asked } = setup({ epoch: E, offset: 1 }, [answer([2, 3, 4], true), answer([5])]);
    sub.deliver(...msg(5)); // 2..4 missing
    sub.deliver(...msg(6)); // held
    await new Promise((r) => setTimeout(r, 10));
    expect(asked).toEqual([`${E}:1`, `${E}:4`]);
    expect(seen).toEqual([2, 3, 4, 5, 6]);
    expect(sub.stats.catchUps).toBe(1);
  });

  it('treats a checkpoint ahead of its position as a gap (a missed final event no later event would reveal)', async () => {
    const { sub, seen } = setup('start', [{ ...answer([1, 2]), events: [...answer([1]).events, { id: `${E}:2`, event: 'complete', data: { topic: 'content:x', seq: 2, ts: 0 } as MessageData }] }]);
    const ended: string[] = [];
    sub.on('end', (e) => void ended.push(e.reason));
    sub.checkpoint('content:x', { epoch: E, offset: 2 });
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual([1, 2]);
    expect(ended).toEqual(['complete']);
    expect(sub.closed).toBe(true);
  });

  it('holds events until it learns where "now" is, then drops what came before', () => {
    const { sub, seen } = setup('now');
    sub.deliver(...msg(3)); // a replay for another subscriber of the topic
    sub.deliver(...msg(4));
    expect(seen).toEqual([]);
    sub.checkpoint('content:x', { epoch: E, offset: 4 });
    sub.deliver(...msg(5));
    expect(seen).toEqual([5]);
    const live = setup('now');
    live.sub.deliver(...msg(8));
    live.sub.joinLive('content:x', { epoch: E, offset: 7 }); // joined a live topic at 7: 8 is new
    expect(live.seen).toEqual([8]);
  });

  it('ignores a reset it is already past, and asks for its own position otherwise', async () => {
    const reset = { topic: 'content:x', reason: 'expired', message: '', position: { epoch: E, offset: 3 }, state: { progress: 30 } };
    const ahead = setup({ epoch: E, offset: 5 });
    ahead.sub.reset(reset);
    expect(ahead.asked).toEqual([]);
    const behind = setup({ epoch: E, offset: 1 }, [{ events: [{ id: `${E}:9`, event: 'reset', data: { topic: 'content:x', seq: 9, ts: 0, epoch: E, reason: 'expired', state: { progress: 90 } } as MessageData }], lastEventId: `${E}:9`, more: false }]);
    behind.sub.reset(reset);
    await new Promise((r) => setTimeout(r, 10));
    expect(behind.asked).toEqual([`${E}:1`]);
    expect(behind.resets).toEqual(['expired']);
    behind.sub.deliver(...msg(9));
    behind.sub.deliver(...msg(10));
    expect(behind.seen).toEqual([10]);
  });
});
