// Progress streams end to end with the real `eventsource` client: the simulator, resume
// after a dropped connection (no loss, no duplicate, checked by seq), `reset` when
// history no longer covers the gap, the per-user feed and the multi-topic stream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { http, openClient, rawGet, seqs, startDropProxy, waitFor, type Client, type DropProxy } from './helpers.js';

let gw: TestGateway;
let proxy: DropProxy;
let alice: string;
let bob: string;
const clients: Client[] = [];
const track = (c: Client): Client => (clients.push(c), c);

beforeAll(async () => {
  gw = await startGateway({ retryMs: 100 });
  proxy = await startDropProxy(gw.url);
  alice = await gw.userToken('alice');
  bob = await gw.userToken('bob');
});

afterAll(async () => {
  for (const c of clients) c.close();
  await proxy.close();
  await gw.stop();
});

const publish = (contentId: string, fields: Record<string, unknown> = {}, event = 'progress') => gw.gateway.service('content').progress.publish(contentId, event, fields);
const newContent = (owner: string) => gw.gateway.service('content').progress.create(owner).id;

describe('content progress stream', () => {
  it('streams a simulated generation job from 0 to 100 and complete, then stops the client with 204', async () => {
    const created = await http('POST', `${gw.url}/api/content`, { token: alice, body: { steps: 5, intervalMs: 20 } });
    expect(created.status).toBe(201);
    const contentId = created.json.contentId as string;
    expect(created.json).toMatchObject({ userId: 'alice', simulated: true, steps: 5, progressUrl: `/api/content/${contentId}/progress` });

    const c = track(openClient(`${gw.url}/api/content/${contentId}/progress?access_token=${alice}`));
    await waitFor(() => c.of('complete').length === 1, 'the complete event');
    const progress = c.of('progress');
    expect(progress.map((e) => e.data.progress)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(seqs(progress)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(c.of('complete')[0]!.data).toMatchObject({ seq: 7, progress: 100 });
    for (const e of [...progress, ...c.of('complete')]) {
      // The item's own stream does not repeat what its URL says (the topic, the content id).
      expect(e.data.contentId).toBeUndefined();
      expect(e.data.topic).toBeUndefined();
      expect(typeof e.data.ts).toBe('number');
      expect(Math.abs(e.data.ts! - Date.now())).toBeLessThan(60_000);
      expect(e.id).toMatch(new RegExp(`^[\\w-]+:${e.data.seq}$`));
    }
    // After the final event the server ends the stream; the client's reconnect gets 204 and EventSource stops.
    await waitFor(() => c.es.readyState === c.es.CLOSED, 'EventSource to stop after 204');
    expect(c.of('complete')).toHaveLength(1);
    const state = await http('GET', `${gw.url}/api/content/${contentId}`, { token: alice });
    expect(state.json).toMatchObject({ status: 'complete', progress: 100, userId: 'alice' });
  });

  it('a simulated job can fail at a chosen step', async () => {
    const created = await http('POST', `${gw.url}/api/content`, { token: alice, body: { steps: 4, intervalMs: 10, failAtStep: 2 } });
    const c = track(openClient(`${gw.url}/api/content/${created.json.contentId as string}/progress`, alice));
    await waitFor(() => c.of('failed').length === 1, 'the failed event');
    expect(c.of('progress').map((e) => e.data.progress)).toEqual([0, 25]);
    expect(c.of('failed')[0]!.data).toMatchObject({ seq: 3, progress: 50 });
  });

  it('resumes after a dropped connection with no loss and no duplicate', async () => {
    const contentId = newContent('alice');
    const c = track(openClient(`${proxy.url}/api/content/${contentId}/progress`, alice));
    await waitFor(() => c.of('ready').length === 1, 'ready');
    for (let i = 1; i <= 5; i++) await publish(contentId, { progress: i });
    await waitFor(() => c.of('progress').length === 5, 'five live events');

    proxy.cut();
    // Published while the connection is down (some may be written into the dead socket).
    for (let i = 6; i <= 10; i++) await publish(contentId, { progress: i });
    await waitFor(() => c.of('progress').length >= 10, 'the missed events after reconnecting');
    for (let i = 11; i <= 15; i++) await publish(contentId, { progress: i });
    await waitFor(() => c.of('progress').length >= 15, 'live events after the resume');

    expect(c.opens).toBeGreaterThanOrEqual(2);
    expect(seqs(c.of('progress'))).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(c.of('progress').map((e) => e.data.progress)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(c.of('reset')).toHaveLength(0);
    expect(c.of('ready').at(-1)!.data.resumed).toBe(true);
  });

  it('starts at the beginning of the item by default, and at the present with from=now', async () => {
    const contentId = newContent('alice');
    for (let i = 1; i <= 3; i++) await publish(contentId, { progress: i * 10 });
    const fromStart = track(openClient(`${gw.url}/api/content/${contentId}/progress`, alice));
    const fromNow = track(openClient(`${gw.url}/api/content/${contentId}/progress?from=now`, alice));
    await waitFor(() => fromStart.of('ready').length === 1 && fromNow.of('ready').length === 1, 'both streams ready');
    await publish(contentId, { progress: 40 });
    await waitFor(() => fromStart.of('progress').length === 4 && fromNow.of('progress').length === 1, 'the live event');
    expect(seqs(fromStart.of('progress'))).toEqual([1, 2, 3, 4]);
    expect(seqs(fromNow.of('progress'))).toEqual([4]);
    expect(fromNow.of('ready')[0]!.id).toBe(fromStart.of('progress')[2]!.id);
  });

  it('accepts ?lastEventId= for clients that cannot set headers', async () => {
    const contentId = newContent('alice');
    const msgs = [];
    for (const p of [1, 2, 3, 4]) msgs.push(await publish(contentId, { progress: p }));
    const c = track(openClient(`${gw.url}/api/content/${contentId}/progress?lastEventId=${msgs[1]!.epoch}:2`, alice));
    await waitFor(() => c.of('ready').length === 1, 'ready');
    expect(seqs(c.of('progress'))).toEqual([3, 4]);
  });
});

describe('reset when history no longer covers the gap', () => {
  let small: TestGateway;
  let smallProxy: DropProxy;
  beforeAll(async () => {
    small = await startGateway({ retryMs: 100, historySize: 5 });
    smallProxy = await startDropProxy(small.url);
  });
  afterAll(async () => {
    await smallProxy.close();
    await small.stop();
  });

  it('sends one explicit reset with the current state, then continues live', async () => {
    const { progress } = small.gateway.service('content');
    const contentId = progress.create('alice').id;
    const token = await small.userToken('alice');
    const c = track(openClient(`${smallProxy.url}/api/content/${contentId}/progress`, token));
    await waitFor(() => c.of('ready').length === 1, 'ready');
    for (let i = 1; i <= 3; i++) await progress.publish(contentId, 'progress', { progress: i, stage: 'drafting' });
    await waitFor(() => c.of('progress').length === 3, 'three events');

    smallProxy.cut();
    for (let i = 4; i <= 13; i++) await progress.publish(contentId, 'progress', { progress: i, stage: 'editing' }); // history keeps 9..13 only
    await waitFor(() => c.of('reset').length === 1, 'the reset event');
    await waitFor(() => c.of('ready').length === 2, 'ready after the reset');
    await progress.publish(contentId, 'progress', { progress: 14 });
    await waitFor(() => c.of('progress').some((e) => e.data.seq === 14), 'the next live event');

    const reset = c.of('reset')[0]!;
    expect(reset.data).toMatchObject({ reason: 'expired', topic: `content:${contentId}`, seq: 13, state: { progress: 13, stage: 'editing', status: 'running' } });
    // Before the reset: exactly what was received live; after it: only new events. Never a silent skip.
    const progressSeqs = seqs(c.of('progress'));
    expect(progressSeqs.filter((s) => s <= 3)).toEqual([1, 2, 3]);
    expect(progressSeqs.filter((s) => s > 3 && s < 14).every((s) => s >= 4)).toBe(true);
    expect(progressSeqs.at(-1)).toBe(14);
    expect(c.of('ready')[1]!.data.resumed).toBe(false);
    // Events the dead socket may have carried before the cut are the only ones between 4 and 13.
    const afterReset = c.events.slice(c.events.indexOf(reset));
    expect(afterReset.filter((e) => e.type === 'progress').map((e) => e.data.seq)).toEqual([14]);
  });

  it('answers an id from another epoch (topic recreated, server restarted) with reset, then replays the new epoch it still holds', async () => {
    const { progress } = small.gateway.service('content');
    const contentId = progress.create('alice').id;
    const m = await progress.publish(contentId, 'progress', { progress: 5 });
    const token = await small.userToken('alice');
    const raw = await rawGet(`${small.url}/api/content/${contentId}/progress`, { authorization: `Bearer ${token}`, 'last-event-id': 'oldEpoch1:1' });
    await waitFor(() => raw.frames().some((f) => f.fields.event === 'ready'), 'ready');
    raw.destroy();
    const events = raw.frames().map((f) => f.fields);
    const reset = events.findIndex((f) => f.event === 'reset');
    // The reset names the start of the new epoch; what was published in it since is not skipped.
    expect(JSON.parse(events[reset]!.data!)).toMatchObject({ reason: 'epoch', seq: 0, epoch: m.epoch });
    expect(events.slice(reset + 1).map((f) => [f.event, f.id])).toEqual([
      ['progress', `${m.epoch}:1`],
      ['ready', `${m.epoch}:1`],
    ]);
  });
});

describe('per-user feed (the seed path)', () => {
  it('carries every event of the user’s content and nothing of other users', async () => {
    const c = track(openClient(`${gw.url}/api/content/progress?connectionId=conn-7&userId=alice`, alice));
    await waitFor(() => c.of('ready').length === 1, 'ready');
    expect(c.of('ready')[0]!.data).toMatchObject({ connectionId: 'conn-7', topics: ['user:alice'] });
    const a1 = newContent('alice');
    const a2 = newContent('alice');
    const b1 = newContent('bob');
    await publish(a1, { progress: 10 });
    await publish(b1, { progress: 99 });
    await publish(a2, { progress: 20 });
    await publish(a1, { progress: 30 });
    await waitFor(() => c.of('progress').length === 3, "alice's three events");
    expect(c.of('progress').map((e) => [e.data.contentId, e.data.progress])).toEqual([
      [a1, 10],
      [a2, 20],
      [a1, 30],
    ]);
    const s = seqs(c.of('progress'));
    expect(s[1]).toBe(s[0]! + 1);
    expect(s[2]).toBe(s[0]! + 2);
  });

  it('service_role reads any user’s feed; a user may not read another’s', async () => {
    const asService = track(openClient(`${gw.url}/api/content/progress?userId=bob`, gw.keys.service_role));
    await waitFor(() => asService.of('ready').length === 1, 'ready');
    const denied = await http('GET', `${gw.url}/api/content/progress?userId=bob`, { token: alice });
    expect(denied.status).toBe(403);
    expect(denied.json.error!.code).toBe('forbidden');
    const own = await rawGet(`${gw.url}/api/content/progress`, { authorization: `Bearer ${bob}` });
    expect(own.status).toBe(200);
    own.destroy();
  });
});

describe('multi-topic stream', () => {
  it('carries several topics on one connection and resumes each of them exactly', async () => {
    const a = newContent('alice');
    const b = newContent('alice');
    const url = `${proxy.url}/v1/stream?topic=content:${a}&topic=content:${b}&topic=user:alice`;
    const c = track(openClient(url, alice));
    await waitFor(() => c.of('ready').length === 1, 'ready');
    expect(c.of('ready')[0]!.data.topics).toEqual([`content:${a}`, `content:${b}`, 'user:alice']);
    for (let i = 1; i <= 3; i++) {
      await publish(a, { progress: i });
      await publish(b, { progress: 10 + i });
    }
    await waitFor(() => c.of('progress').length === 12, 'six events on each content topic and their user-topic copies');
    proxy.cut();
    for (let i = 4; i <= 6; i++) {
      await publish(b, { progress: 10 + i });
      await publish(a, { progress: i });
    }
    await waitFor(() => c.of('ready').length === 2, 'the resumed stream');
    for (let i = 7; i <= 8; i++) await publish(a, { progress: i });
    await waitFor(() => c.of('progress').filter((e) => e.data.topic === `content:${a}`).length >= 8, 'the live events after resuming');

    const byTopic = (topic: string) => seqs(c.of('progress').filter((e) => e.data.topic === topic));
    expect(byTopic(`content:${a}`)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(byTopic(`content:${b}`)).toEqual([1, 2, 3, 4, 5, 6]);
    const user = byTopic('user:alice');
    expect(user).toEqual(Array.from({ length: 14 }, (_, i) => user[0]! + i));
    expect(c.of('reset')).toHaveLength(0);
    expect(c.of('ready')[1]!.data.resumed).toBe(true);
    // Each id names one position per topic, in the URL's order.
    const last = c.events.at(-1)!;
    expect(last.id.split(',')).toHaveLength(3);
    expect(last.id.split(',')[0]).toMatch(/:8$/);
    expect(last.id.split(',')[1]).toMatch(/:6$/);
  });

  it('a single-topic /v1/stream uses the same id format as the content stream', async () => {
    const a = newContent('alice');
    const c = track(openClient(`${gw.url}/v1/stream?topic=content:${a}`, alice));
    await waitFor(() => c.of('ready').length === 1, 'ready');
    const m = await publish(a, { progress: 1 });
    await waitFor(() => c.of('progress').length === 1, 'the event');
    expect(c.of('progress')[0]!.id).toBe(`${m.epoch}:1`);
  });
});
