// What the client library relies on beyond the single-topic endpoints: `/v1/poll` (the
// multi-topic long-poll), `start`/`now` parts in a multi-topic cursor, the 204 that ends
// a /v1/stream whose topics are all finished, and the `fanout-topic` header naming the
// topic a refusal is about.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { http, rawGet, waitFor } from './helpers.js';

let gw: TestGateway;
let alice: string;

beforeAll(async () => {
  gw = await startGateway({ historySize: 150 }, { sweepMs: 50 });
  alice = await gw.userToken('alice');
});
afterAll(() => gw.stop());

interface PollBody {
  events: { id: string; event: string; data: { topic: string; seq: number; reason?: string } }[];
  lastEventId: string;
  more: boolean;
  state: unknown;
}

const item = () => {
  const { progress } = gw.gateway.service('content');
  const id = progress.create('alice').id;
  return { id, topic: `content:${id}`, publish: (event = 'progress') => progress.publish(id, event, { progress: 1 }) };
};

const poll = async (query: string, token = alice) => {
  const res = await http('GET', `${gw.url}/v1/poll?${query}`, { token });
  return { status: res.status, headers: res.headers, body: res.json as unknown as PollBody };
};

const q = (topics: string[], rest: string) => `${topics.map((t) => `topic=${encodeURIComponent(t)}`).join('&')}&${rest}`;

describe('/v1/poll', () => {
  it('answers at once with what is retained after each topic position, in topic order, and a cursor to poll with next', async () => {
    const a = item();
    const b = item();
    const ma = [await a.publish(), await a.publish()];
    const mb = await b.publish();
    const got = await poll(q([a.topic, b.topic], `after=start,start&wait=0`));
    expect(got.status).toBe(200);
    expect(got.body.events.map((e) => [e.data.topic, e.id, e.data.seq])).toEqual([
      [a.topic, `${ma[0]!.epoch}:1`, 1],
      [a.topic, `${ma[0]!.epoch}:2`, 2],
      [b.topic, `${mb.epoch}:1`, 1],
    ]);
    expect(got.body.lastEventId).toBe(`${ma[0]!.epoch}:2,${mb.epoch}:1`);
    expect(got.body.more).toBe(false);
    // Positions and tokens mix: `now` for b gives nothing of b.
    const mixed = await poll(q([a.topic, b.topic], `after=${ma[0]!.epoch}:1,now&wait=0`));
    expect(mixed.body.events.map((e) => e.data.seq)).toEqual([2]);
    expect(mixed.body.lastEventId).toBe(`${ma[0]!.epoch}:2,${mb.epoch}:1`);
  });

  it('waits for the next event of any of its topics', async () => {
    const a = item();
    const b = item();
    const pending = poll(q([a.topic, b.topic], 'after=now,now&wait=20'));
    await waitFor(() => gw.gateway.connections.count('poll') === 1, 'the poll to wait');
    const m = await b.publish();
    const got = await pending;
    expect(got.body.events.map((e) => [e.data.topic, e.data.seq])).toEqual([[b.topic, 1]]);
    expect(got.body.lastEventId).toBe(`${gw.gateway.hub.position(a.topic).epoch}:0,${m.epoch}:1`);
    expect(gw.gateway.connections.count('poll')).toBe(0);
    expect(gw.gateway.hub.subscriberCount(a.topic)).toBe(0);
  });

  it('sends a reset for a topic whose history no longer covers the gap, and says when there is more', async () => {
    const a = item();
    const b = item();
    const first = await a.publish();
    for (let i = 0; i < 200; i++) await a.publish(); // history keeps 150
    await b.publish();
    const got = await poll(q([a.topic, b.topic], `after=${first.epoch}:1,start&wait=0`));
    expect(got.body.events[0]).toMatchObject({ event: 'reset', id: `${first.epoch}:201`, data: { topic: a.topic, reason: 'expired', seq: 201 } });
    expect(got.body.events.slice(1).map((e) => [e.data.topic, e.data.seq])).toEqual([[b.topic, 1]]);
    const many = await poll(q([a.topic], `after=${first.epoch}:60&wait=0`));
    expect(many.body.events).toHaveLength(100);
    expect(many.body.more).toBe(true);
    expect(many.body.lastEventId).toBe(`${first.epoch}:160`);
  });

  it('refuses bad input with a JSON error, naming the topic a refusal is about', async () => {
    const a = item();
    const bob = await gw.userToken('bob');
    const forbidden = await poll(q([a.topic], 'wait=0'), bob);
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('fanout-topic')).toBe(encodeURIComponent(a.topic));
    const unknown = await poll(q(['user:alice', 'content:nope'], 'wait=0'));
    expect(unknown.status).toBe(404);
    expect(decodeURIComponent(unknown.headers.get('fanout-topic')!)).toBe('content:nope');
    const badCursor = await http('GET', `${gw.url}/v1/poll?${q([a.topic, 'user:alice'], 'after=start&wait=0')}`, { token: alice });
    expect(badCursor.status).toBe(400);
    expect(badCursor.json.error?.code).toBe('invalid_last_event_id');
    expect((await http('GET', `${gw.url}/v1/poll?${q([a.topic], 'wait=99')}`, { token: alice })).json.error?.code).toBe('invalid_wait');
    expect((await http('GET', `${gw.url}/v1/poll?topic=${a.topic}`)).status).toBe(401);
    expect((await http('GET', `${gw.url}/v1/poll`, { token: alice })).json.error?.code).toBe('missing_topic');
  });
});

describe('/v1/stream for a client that changes its topic set', () => {
  it('accepts `start` and `now` for topics without a position', async () => {
    const a = item();
    const b = item();
    const ma = await a.publish();
    await a.publish();
    await b.publish();
    const s = await rawGet(`${gw.url}/v1/stream?${q([a.topic, b.topic], `lastEventId=${ma.epoch}:1,now`)}`, { authorization: `Bearer ${alice}` });
    await waitFor(() => s.frames().some((f) => f.fields.event === 'ready'), 'ready');
    s.destroy();
    const frames = s.frames().filter((f) => f.fields.event);
    expect(frames.map((f) => [f.fields.event, (JSON.parse(f.fields.data!) as { seq?: number }).seq])).toEqual([
      ['progress', 2],
      ['ready', undefined],
    ]);
    const start = await rawGet(`${gw.url}/v1/stream?${q([a.topic, b.topic], 'lastEventId=now,start')}`, { authorization: `Bearer ${alice}` });
    await waitFor(() => start.frames().some((f) => f.fields.event === 'ready'), 'ready');
    start.destroy();
    expect(start.frames().filter((f) => f.fields.event === 'progress').map((f) => (JSON.parse(f.fields.data!) as { topic: string }).topic)).toEqual([b.topic]);
  });

  it('answers 204 when every topic is a finished item whose final event the client has', async () => {
    const a = item();
    const b = item();
    const ma = await a.publish('complete');
    const mb = await b.publish('failed');
    const done = await http('GET', `${gw.url}/v1/stream?${q([a.topic, b.topic], `lastEventId=${ma.epoch}:1,${mb.epoch}:1`)}`, { token: alice });
    expect(done.status).toBe(204);
    // One topic short of its end, or a user topic among them: the stream opens.
    const behind = await rawGet(`${gw.url}/v1/stream?${q([a.topic, b.topic], `lastEventId=start,${mb.epoch}:1`)}`, { authorization: `Bearer ${alice}` });
    expect(behind.status).toBe(200);
    behind.destroy();
  });

  it('names the refused topic in the fanout-topic header', async () => {
    const res = await http('GET', `${gw.url}/v1/stream?topic=user:alice&topic=content:gone`, { token: alice });
    expect(res.status).toBe(404);
    expect(res.headers.get('fanout-topic')).toBe(encodeURIComponent('content:gone'));
  });
});
