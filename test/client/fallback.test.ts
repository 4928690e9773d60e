// The long-poll fallback: behind a proxy that buffers responses (the stream's headers
// pass, its events never do) the client notices that `ready` does not arrive, switches
// to long-polling the same topics from the same positions, and goes back to SSE once the
// proxy lets streams through — with every event delivered once, in order, across both
// switches. Also: a topic-set change while polling, and `transport: 'poll'`.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FanoutClient } from '../../src/client/index.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../sse/helpers.js';
import { range, record, sleep, startBufferingProxy } from './helpers.js';

let gw: TestGateway;
let alice: string;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  gw = await startGateway({ historySize: 5000 }, { sweepMs: 50 });
  alice = await gw.userToken('alice');
});
afterAll(() => gw.stop());
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function item() {
  const { progress } = gw.gateway.service('content');
  const id = progress.create('alice').id;
  let n = 0;
  return { id, publish: (event = 'progress') => progress.publish(id, event, { progress: Math.min(100, ++n % 100) }) };
}

describe('fallback to long-poll and back', () => {
  it('polls while a proxy buffers the stream, returns to SSE when it stops, and loses or repeats nothing', async () => {
    const proxy = await startBufferingProxy(gw.url, true);
    cleanups.push(() => proxy.close());
    const c = new FanoutClient({
      url: proxy.url,
      apiKey: alice,
      timing: { readyTimeoutMs: 400, sseFailuresBeforePolling: 2, sseRetryMs: 1500, sseRetryMaxMs: 1500, pollWaitS: 1, backoffInitialMs: 50, backoffMaxMs: 200 },
    });
    cleanups.push(() => c.close());
    const states: string[] = [];
    c.on('state', (s) => void states.push(s));
    const a = item();
    const progress = record(c.progress(a.id));
    const mine = record(c.userProgress(undefined, undefined, { from: 'start' }));
    let published = 0;
    const timer = setInterval(() => {
      void a.publish();
      published++;
    }, 10);
    cleanups.push(() => clearInterval(timer));

    await waitFor(() => c.state === 'polling', 'the fallback to polling', 10_000);
    expect(c.stats.fallbacks).toBe(1);
    const atSwitch = progress.messages.length;
    await waitFor(() => progress.messages.length > atSwitch + 20, 'events to arrive by long-poll', 10_000);
    expect(c.stats.transport).toBe('poll');
    expect(proxy.requests.get('/v1/poll') ?? 0).toBeGreaterThan(0);

    // A failed try of SSE while the proxy still buffers keeps the client polling.
    await sleep(2000);
    expect(c.state).toBe('polling');

    proxy.buffering = false;
    await waitFor(() => c.state === 'open', 'the return to SSE', 15_000);
    expect(c.stats.restores).toBe(1);
    expect(c.stats.transport).toBe('sse');
    const atRestore = progress.messages.length;
    await waitFor(() => progress.messages.length > atRestore + 20, 'events over SSE again');
    clearInterval(timer);
    await a.publish('complete');
    published++;
    await waitFor(() => progress.ends.length === 1 && mine.messages.length === published, 'every event');
    expect(progress.seqs()).toEqual(range(1, published));
    expect(mine.seqs()).toEqual(range(1, published));
    expect(states).toEqual(expect.arrayContaining(['connecting', 'polling', 'open']));
    expect(states.indexOf('polling')).toBeLessThan(states.lastIndexOf('open'));
    expect(c.stats.duplicates).toBeGreaterThanOrEqual(0);
  });

  it('follows a topic added while polling, and a client forced to poll works end to end', async () => {
    const c = new FanoutClient({ url: gw.url, apiKey: alice, transport: 'poll', timing: { pollWaitS: 2, topicChangeDelayMs: 5 } });
    cleanups.push(() => c.close());
    const a = item();
    const b = item();
    const ra = record(c.progress(a.id));
    for (let i = 0; i < 3; i++) await a.publish();
    await waitFor(() => ra.messages.length === 3, 'the first events by poll');
    expect(c.state).toBe('polling');
    expect(gw.gateway.connections.count('sse')).toBe(0);
    const rb = record(c.progress(b.id));
    await b.publish();
    await a.publish();
    await waitFor(() => rb.messages.length === 1 && ra.messages.length === 4, 'both topics');
    await a.publish('complete');
    await b.publish('failed');
    await waitFor(() => ra.ends.length === 1 && rb.ends.length === 1, 'both ends');
    expect(ra.seqs()).toEqual([1, 2, 3, 4, 5]);
    expect(rb.seqs()).toEqual([1, 2]);
    expect(rb.ends).toEqual(['failed']);
  });
});
