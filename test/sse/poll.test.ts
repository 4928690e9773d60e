// The long-poll fallback: same ids and history as the streams, immediate answers when
// something is retained, a wait that a publish ends early, and a reset when history has
// moved on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { http, openClient, waitFor } from './helpers.js';

let gw: TestGateway;
let alice: string;

beforeAll(async () => {
  gw = await startGateway({ historySize: 150 }, { sweepMs: 50 });
  alice = await gw.userToken('alice');
});
afterAll(() => gw.stop());

interface PollEvent {
  id: string;
  event: string;
  data: { seq: number; ts: number; progress?: number; reason?: string; state?: { progress: number } };
}
interface PollBody {
  events: PollEvent[];
  lastEventId: string;
  more: boolean;
  state: { status: string; progress: number | null };
}

const poll = async (contentId: string, query: string): Promise<{ status: number; body: PollBody; ms: number }> => {
  const started = Date.now();
  const res = await http('GET', `${gw.url}/api/content/${contentId}/progress/poll?${query}`, { token: alice });
  return { status: res.status, body: res.json as unknown as PollBody, ms: Date.now() - started };
};

const setup = () => {
  const { progress } = gw.gateway.service('content');
  const id = progress.create('alice').id;
  return { id, publish: (fields: Record<string, unknown>, event = 'progress') => progress.publish(id, event, fields) };
};

describe('long-poll', () => {
  it('answers at once with what is retained, in order, with the same ids as the stream', async () => {
    const { id, publish } = setup();
    const msgs = [];
    for (const p of [10, 20, 30]) msgs.push(await publish({ progress: p }));
    const all = await poll(id, 'wait=0');
    expect(all.status).toBe(200);
    expect(all.body.events.map((e) => [e.id, e.event, e.data.seq, e.data.progress])).toEqual(msgs.map((m, i) => [`${m.epoch}:${i + 1}`, 'progress', i + 1, (i + 1) * 10]));
    expect(all.body).toMatchObject({ lastEventId: `${msgs[0]!.epoch}:3`, more: false, state: { status: 'running', progress: 30 } });
    const after = await poll(id, `after=${msgs[0]!.epoch}:1&wait=0`);
    expect(after.body.events.map((e) => e.data.seq)).toEqual([2, 3]);
    // The stream and the poll agree on ids.
    const c = openClient(`${gw.url}/api/content/${id}/progress`, alice);
    await waitFor(() => c.of('ready').length === 1, 'ready');
    c.close();
    expect(c.of('progress').map((e) => e.id)).toEqual(all.body.events.map((e) => e.id));
  });

  it('waits for the next event and answers as soon as it is published', async () => {
    const { id, publish } = setup();
    const first = await publish({ progress: 1 });
    const pending = poll(id, `after=${first.epoch}:1&wait=20`);
    await waitFor(() => gw.gateway.connections.count('poll') === 1, 'the poll to wait');
    expect(gw.gateway.hub.subscriberCount(`content:${id}`)).toBe(1);
    setTimeout(() => publish({ progress: 2 }), 100);
    const got = await pending;
    expect(got.body.events.map((e) => e.data.seq)).toEqual([2]);
    expect(got.body.lastEventId).toBe(`${first.epoch}:2`);
    expect(got.ms).toBeLessThan(10_000);
    expect(gw.gateway.connections.count('poll')).toBe(0);
    expect(gw.gateway.hub.subscriberCount(`content:${id}`)).toBe(0);
  });

  it('answers an empty list when the wait ends with nothing new', async () => {
    const { id, publish } = setup();
    const m = await publish({ progress: 1 });
    const got = await poll(id, `after=${m.epoch}:1&wait=1`);
    expect(got.body.events).toEqual([]);
    expect(got.body.lastEventId).toBe(`${m.epoch}:1`);
    expect(got.ms).toBeGreaterThanOrEqual(900);
    expect(gw.gateway.connections.count('poll')).toBe(0);
  });

  it('pages through long histories with more=true', async () => {
    const { id, publish } = setup();
    for (let i = 1; i <= 130; i++) await publish({ progress: i % 100 });
    const page1 = await poll(id, 'wait=0');
    expect(page1.body.events).toHaveLength(100);
    expect(page1.body.more).toBe(true);
    const page2 = await poll(id, `after=${page1.body.lastEventId}&wait=0`);
    expect(page2.body.events.map((e) => e.data.seq)).toEqual(Array.from({ length: 30 }, (_, i) => 101 + i));
    expect(page2.body.more).toBe(false);
  });

  it('answers reset (never a silent skip) when history no longer covers the gap', async () => {
    const { id, publish } = setup();
    const first = await publish({ progress: 0 });
    for (let i = 1; i <= 200; i++) await publish({ progress: i % 100 });
    const got = await poll(id, `after=${first.epoch}:1&wait=0`);
    expect(got.body.events).toHaveLength(1);
    expect(got.body.events[0]).toMatchObject({ event: 'reset', id: `${first.epoch}:201`, data: { reason: 'expired', seq: 201, state: { progress: 0 } } });
    expect(got.body.lastEventId).toBe(`${first.epoch}:201`);
  });

  it('does not wait on a finished item that the client is up to date with', async () => {
    const { id, publish } = setup();
    const done = await publish({}, 'complete');
    const got = await poll(id, `after=${done.epoch}:1&wait=30`);
    expect(got.ms).toBeLessThan(5_000);
    expect(got.body).toMatchObject({ events: [], state: { status: 'complete', progress: 100 } });
  });

  it('frees the waiting poll when the client goes away', async () => {
    const { id, publish } = setup();
    const m = await publish({ progress: 1 });
    const ac = new AbortController();
    const pending = fetch(`${gw.url}/api/content/${id}/progress/poll?after=${m.epoch}:1&wait=30`, { headers: { authorization: `Bearer ${alice}` }, signal: ac.signal }).catch(() => 'aborted');
    await waitFor(() => gw.gateway.connections.count('poll') === 1, 'the poll to wait');
    ac.abort();
    expect(await pending).toBe('aborted');
    await waitFor(() => gw.gateway.connections.count('poll') === 0, 'the poll to be freed');
    expect(gw.gateway.hub.subscriberCount(`content:${id}`)).toBe(0);
  });
});
