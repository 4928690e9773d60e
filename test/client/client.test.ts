// The client library in Node against a real gateway: one connection for many
// subscriptions, deduplicated and reference-counted; resume after a cut connection,
// after a topic-set change, across a server shutdown, with a refreshed token; reset
// handling; the 204 end of stream; refused topics; a late subscriber filling its gap; and
// Retry-After honoured when the gateway refuses a stream at a cap.
// Every delivery check is exact: the sequence numbers a subscription saw, in order.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FanoutClient, type FanoutClientOptions } from '../../src/client/index.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../sse/helpers.js';
import { range, record, sleep, startTcpProxy, type TcpProxy } from './helpers.js';

let gw: TestGateway;
let alice: string;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  gw = await startGateway({ historySize: 50, retryMs: 200 }, { sweepMs: 50 });
  alice = await gw.userToken('alice');
});
afterAll(() => gw.stop());
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const FAST = { readyTimeoutMs: 3000, backoffInitialMs: 50, backoffMaxMs: 400, topicChangeDelayMs: 5 };

function client(options: Partial<FanoutClientOptions> = {}): FanoutClient {
  const c = new FanoutClient({ url: gw.url, apiKey: alice, ...options, timing: { ...FAST, ...options.timing } });
  cleanups.push(() => c.close());
  return c;
}

async function proxy(): Promise<TcpProxy> {
  const p = await startTcpProxy(gw.url);
  cleanups.push(() => p.close());
  return p;
}

function content(owner = 'alice') {
  const { progress } = gw.gateway.service('content');
  const id = progress.create(owner).id;
  let n = 0;
  return {
    id,
    publish: (event = 'progress') => progress.publish(id, event, { progress: Math.min(100, ++n) }),
  };
}

/** Publishes every `ms` until stopped; returns how many were published. */
function publishEvery(ms: number, publish: () => unknown): { stop(): number } {
  let n = 0;
  const timer = setInterval(() => {
    void publish();
    n++;
  }, ms);
  return {
    stop() {
      clearInterval(timer);
      return n;
    },
  };
}

const sseStreams = (): number => gw.gateway.connections.count('sse');

describe('one connection, deduplicated and reference-counted subscriptions', () => {
  it('carries every subscription of a client over one stream and drops topics nobody follows', async () => {
    const c = client();
    const a = content();
    const b = content();
    const firstSub = c.progress(a.id);
    const secondSub = c.progress(a.id);
    const first = record(firstSub);
    const second = record(secondSub);
    const other = record(c.progress(b.id));
    const mine = record(c.userProgress());
    await waitFor(() => c.state === 'open' && c.stats.topics === 3, 'the stream to open with three topics');
    expect(sseStreams()).toBe(1);
    expect(c.subscriptionKeys()).toEqual(
      expect.arrayContaining([
        { key: `alice:content:${a.id}`, refs: 2 },
        { key: `alice:content:${b.id}`, refs: 1 },
        { key: 'alice:user:alice', refs: 1 },
      ]),
    );
    for (let i = 0; i < 3; i++) await a.publish();
    await b.publish();
    await waitFor(() => first.messages.length === 3 && second.messages.length === 3 && other.messages.length === 1 && mine.messages.length === 4, 'deliveries');
    expect(first.seqs()).toEqual([1, 2, 3]);
    expect(second.seqs()).toEqual([1, 2, 3]);
    expect(other.seqs()).toEqual([1]);
    expect(mine.seqs()).toEqual([1, 2, 3, 4]);

    // Closing one of two subscriptions of an item keeps the topic; closing the last drops it.
    firstSub.close();
    expect(c.subscriptionKeys()).toContainEqual({ key: `alice:content:${a.id}`, refs: 1 });
    secondSub.close();
    await waitFor(() => c.stats.topics === 2 && c.state === 'open', 'the stream to reopen without the item');
    expect(c.subscriptionKeys().map((k) => k.key)).not.toContain(`alice:content:${a.id}`);
    expect(sseStreams()).toBe(1);
    c.close();
    await waitFor(() => sseStreams() === 0, 'the stream to close');
    expect(c.state).toBe('closed');
  });

  it('reopens with the right positions when the topic set changes, losing nothing', async () => {
    const c = client();
    const a = content();
    const b = content();
    const ra = record(c.progress(a.id));
    await waitFor(() => c.state === 'open', 'open');
    const pub = publishEvery(5, () => a.publish());
    await sleep(100);
    const rb = record(c.progress(b.id));
    await sleep(100);
    const extra = c.progress(a.id); // a second subscriber of a live topic: no reconnect needed
    const rextra = record(extra);
    await sleep(100);
    extra.close();
    await sleep(100);
    const n = pub.stop();
    await b.publish();
    await a.publish('complete');
    await waitFor(() => ra.ends.length === 1 && rb.messages.length === 1, 'a to complete and b to deliver');
    expect(ra.seqs()).toEqual(range(1, n + 1));
    expect(rb.seqs()).toEqual([1]);
    // The late subscriber of `a` got the history it missed, then live events, each once.
    expect(rextra.seqs()).toEqual(range(1, rextra.messages.length));
    expect(rextra.messages.length).toBeGreaterThan(0);
    expect(c.stats.connects).toBeGreaterThanOrEqual(2);
    expect(sseStreams()).toBe(1);
  });

  it('starts a "now" subscription where the server says now is, even when the stream replays history for another', async () => {
    const c = client();
    const a = content();
    for (let i = 0; i < 5; i++) await a.publish();
    const history = record(c.progress(a.id)); // from the start: the stream replays 1..5
    const live = record(c.subscribe([`content:${a.id}`])); // from now
    await waitFor(() => history.messages.length === 5 && c.state === 'open', 'the replay');
    await a.publish();
    await waitFor(() => live.messages.length === 1 && history.messages.length === 6, 'the next event');
    expect(live.seqs()).toEqual([6]);
    expect(history.seqs()).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('reconnection', () => {
  it('resumes after cut connections with no loss and no duplicate', async () => {
    const p = await proxy();
    const c = client({ url: p.url });
    const a = content();
    const r = record(c.progress(a.id));
    await waitFor(() => c.state === 'open', 'open');
    const pub = publishEvery(5, () => a.publish());
    for (let i = 0; i < 4; i++) {
      await sleep(150);
      p.cut();
      await waitFor(() => c.state === 'open', 'the stream to reopen', 10_000);
    }
    const n = pub.stop();
    await a.publish('complete');
    await waitFor(() => r.ends.length === 1, 'complete');
    expect(r.seqs()).toEqual(range(1, n + 1));
    expect(r.messages.at(-1)!.event).toBe('complete');
    expect(c.stats.connects).toBeGreaterThanOrEqual(5);
    expect(r.states).toContain('reconnecting');
    expect(r.states.at(-1)).toBe('closed');
    expect(r.resets).toEqual([]);
  });

  it('notices a stalled connection by its silence (no heartbeat) and reconnects without loss', async () => {
    const quiet = await startGateway({ heartbeatMs: 300 }, { sweepMs: 50 });
    cleanups.push(() => quiet.stop());
    const p = await startTcpProxy(quiet.url);
    cleanups.push(() => p.close());
    const c = client({ url: p.url, apiKey: await quiet.userToken('alice'), timing: { idleTimeoutMs: 1500 } });
    const { progress } = quiet.gateway.service('content');
    const id = progress.create('alice').id;
    const r = record(c.progress(id));
    await waitFor(() => c.state === 'open', 'open');
    await progress.publish(id, 'progress', { progress: 1 });
    await waitFor(() => r.messages.length === 1, 'the first event');
    p.freeze(); // bytes stop; nothing closes
    await progress.publish(id, 'progress', { progress: 2 });
    const errors: string[] = [];
    c.on('error', (e) => void errors.push(e.code));
    await waitFor(() => errors.includes('idle_timeout'), 'the idle timeout', 10_000);
    await waitFor(() => r.messages.length === 2 && c.state === 'open', 'the resumed stream');
    await progress.publish(id, 'complete');
    await waitFor(() => r.ends.length === 1, 'complete');
    expect(r.seqs()).toEqual([1, 2, 3]);
  });

  it('reports a reset with the current state when history no longer covers the gap, then continues', async () => {
    const p = await proxy();
    const c = client({ url: p.url });
    const a = content();
    const r = record(c.progress(a.id));
    await a.publish();
    await waitFor(() => r.messages.length === 1, 'the first event');
    p.block(true);
    p.cut();
    await waitFor(() => c.state === 'reconnecting', 'reconnecting');
    for (let i = 0; i < 80; i++) await a.publish(); // history keeps 50
    p.block(false);
    await waitFor(() => r.resets.length === 1 && c.state === 'open', 'the reset');
    expect(r.resets[0]).toMatchObject({ topic: `content:${a.id}`, reason: 'expired', state: { status: 'running', progress: 81 } });
    await a.publish();
    await a.publish('complete');
    await waitFor(() => r.ends.length === 1, 'complete');
    expect(r.seqs()).toEqual([1, 82, 83]);
  });

  it('gets a new token before reconnecting when the server closes an expired stream', async () => {
    let issued = 0;
    const c = client({
      apiKey: undefined,
      getToken: async () => {
        issued++;
        return gw.userToken('alice', 2);
      },
    });
    const a = content();
    const r = record(c.progress(a.id));
    const errors: string[] = [];
    c.on('error', (e) => void errors.push(e.code));
    await waitFor(() => c.state === 'open', 'open');
    const pub = publishEvery(20, () => a.publish());
    await waitFor(() => errors.filter((e) => e === 'token_expired').length >= 2, 'two token expiries', 15_000);
    await waitFor(() => c.state === 'open', 'open again');
    const n = pub.stop();
    await a.publish('complete');
    await waitFor(() => r.ends.length === 1, 'complete');
    expect(r.seqs()).toEqual(range(1, n + 1));
    expect(issued).toBeGreaterThanOrEqual(3);
  });

  it('retries at once with a new token after a 401', async () => {
    // The first call tells the client its user; the next two connects are refused.
    const tokens = [alice, 'not-a-jwt', 'still.not.valid', alice];
    let calls = 0;
    const c = client({ apiKey: undefined, getToken: () => tokens[Math.min(calls++, tokens.length - 1)]! });
    const errors: string[] = [];
    c.on('error', (e) => void errors.push(`${e.status}:${e.code}`));
    const a = content();
    const r = record(c.progress(a.id));
    await waitFor(() => c.state === 'open', 'open');
    await a.publish();
    await waitFor(() => r.messages.length === 1, 'delivery');
    expect(errors.filter((e) => e.startsWith('401'))).toHaveLength(2);
  });

  it('reconnects promptly to another instance when the gateway shuts down', async () => {
    const other = await startGateway({ retryMs: 200 }, { sweepMs: 50 });
    cleanups.push(() => other.stop());
    const first = await startGateway({ retryMs: 200, drainTimeoutMs: 2000 }, { sweepMs: 50 });
    const p = await proxy();
    p.retarget(first.url);
    const c = client({ url: p.url });
    const r = record(c.userProgress('alice'));
    await waitFor(() => c.state === 'open', 'open on the first instance');
    const firstItem = first.gateway.service('content').progress.create('alice').id;
    await first.gateway.service('content').progress.publish(firstItem, 'progress', { progress: 1 });
    await waitFor(() => r.messages.length === 1, 'the first event');
    p.retarget(other.url);
    const started = Date.now();
    await first.stop();
    await waitFor(() => c.state === 'open' && other.gateway.connections.count('sse') === 1, 'the stream on the other instance');
    const took = Date.now() - started;
    // The other instance has another epoch: the client is told, not silently moved.
    await waitFor(() => r.resets.length === 1, 'the epoch reset');
    expect(r.resets[0]!.reason).toBe('epoch');
    const item = other.gateway.service('content').progress.create('alice').id;
    await other.gateway.service('content').progress.publish(item, 'progress', { progress: 5 });
    await waitFor(() => r.messages.length === 2, 'an event from the other instance');
    expect(r.messages[1]!.data).toMatchObject({ contentId: item, progress: 5 });
    expect(took).toBeLessThan(5000);
  });
});

describe('ends and refusals', () => {
  it('ends a stream the server answers 204 (a finished item it has already delivered)', async () => {
    const p = await proxy();
    const c = client({ url: p.url });
    const a = content();
    const sub = c.subscribe([`content:${a.id}`], undefined, { from: 'start' }); // not a progress(): does not end by itself
    const r = record(sub);
    await a.publish();
    await a.publish('complete');
    await waitFor(() => r.messages.length === 2, 'both events');
    expect(r.ends).toEqual([]);
    p.cut();
    await waitFor(() => r.ends.length === 1, 'the 204 end');
    expect(r.ends).toEqual(['ended']);
    expect(sub.state).toBe('closed');
    expect(r.seqs()).toEqual([1, 2]);
  });

  it('drops a topic the server refuses and keeps the others on the connection', async () => {
    const c = client();
    const a = content();
    const good = record(c.progress(a.id));
    const bad = record(c.subscribe(['content:no-such-item']));
    const foreign = record(c.subscribe([`content:${content('bob').id}`]));
    await waitFor(() => bad.ends.length === 1 && foreign.ends.length === 1, 'both refusals');
    expect(bad.errors).toEqual(['content_not_found']);
    expect(foreign.errors).toEqual(['forbidden']);
    await waitFor(() => c.state === 'open', 'open with the good topic');
    await a.publish();
    await waitFor(() => good.messages.length === 1, 'the good topic delivers');
    expect(good.ends).toEqual([]);
  });
});

describe('back-pressure from the gateway', () => {
  it('waits out Retry-After when the gateway refuses a stream at the per-user cap, then opens it and loses nothing', async () => {
    const capped = await startGateway({ maxConnectionsPerUser: 1, retryMs: 200 }, { sweepMs: 50 });
    cleanups.push(() => capped.stop());
    const carol = await capped.userToken('carol');
    const { progress } = capped.gateway.service('content');
    const id = progress.create('carol').id;
    // Another tab of carol's holds her one allowed stream.
    const other = new AbortController();
    const held = await fetch(`${capped.url}/api/content/${id}/progress?access_token=${carol}`, { signal: other.signal });
    expect(held.status).toBe(200);

    const c = client({ url: capped.url, apiKey: carol });
    const failures: { status: number | undefined; at: number }[] = [];
    c.on('error', (e) => void failures.push({ status: e.status, at: Date.now() }));
    const r = record(c.progress(id));
    await waitFor(() => failures.length === 1, 'the refusal');
    expect(failures[0]!.status).toBe(429);
    await progress.publish(id, 'progress', { progress: 10 });
    await progress.publish(id, 'progress', { progress: 20 });
    await sleep(1500);
    // Backoff alone (50-400 ms here) would have retried several times by now, and given up on SSE after two.
    expect(failures).toHaveLength(1);
    other.abort();
    await waitFor(() => c.state === 'open' && r.messages.length === 2, 'the stream, once the slot is free', 10_000);
    const openedAfter = Date.now() - failures[0]!.at;
    expect(openedAfter).toBeGreaterThanOrEqual(4900); // the gateway's Retry-After: 5
    expect(capped.gateway.connections.count('sse')).toBe(1);
    await progress.publish(id, 'complete');
    await waitFor(() => r.ends.length === 1, 'complete');
    expect(r.seqs()).toEqual([1, 2, 3]);
    expect(failures).toHaveLength(1);
  });
});
