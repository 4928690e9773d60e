// The SSE wire format and the encode-once rule: one serialization per message and
// format, whatever the number of subscribers.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLocalHub } from '../../src/bus/memory.js';
import { formatCursor, parseEventId } from '../../src/core/event-id.js';
import { pollEvent, sseBody, sseData, sseFrame, sseStreamData } from '../../src/sse/wire.js';
import { DeliveryTally, LATENCY_SAMPLES_PER_MESSAGE } from '../../src/server/writer.js';
import { GatewayMetrics } from '../../src/server/metrics.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { rawGet, waitFor, type RawStream } from './helpers.js';

describe('encoders', () => {
  const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });

  it('puts the server fields last so a publisher cannot override them', async () => {
    const m = await hub.publish('content:x', 'progress', { progress: 5, stage: 'a' }, { ts: 1700000000000 });
    expect(m.encode(sseData)).toBe('{"progress":5,"stage":"a","topic":"content:x","seq":1,"ts":1700000000000}');
    expect(m.encode(sseStreamData)).toBe('{"progress":5,"stage":"a","seq":1,"ts":1700000000000}');
    expect(m.encode(sseFrame).toString()).toBe(`id: ${m.epoch}:1\nevent: progress\ndata: ${m.encode(sseStreamData)}\n\n`);
    expect(m.encode(sseBody).toString()).toBe(`event: progress\ndata: ${m.encode(sseData)}\n`);
    expect(JSON.parse(m.encode(pollEvent))).toEqual({ id: `${m.epoch}:1`, event: 'progress', data: JSON.parse(m.encode(sseData)) });
  });

  it('repeats nothing the subscriber already knows: no topic on a single-topic stream, no contentId on the item\'s own topic', async () => {
    const data = { contentId: 'job-42', progress: 40, stage: 'draft' };
    const own = await hub.publish('content:job-42', 'progress', data, { ts: 1700000000000 });
    const feed = await hub.publish('user:alice', 'progress', data, { ts: 1700000000000 });
    // The item's stream: its URL names both the topic and the item.
    expect(own.encode(sseFrame).toString()).toBe(`id: ${own.epoch}:1\nevent: progress\ndata: {"progress":40,"stage":"draft","seq":1,"ts":1700000000000}\n\n`);
    // The owner's feed mixes items, so each event says which one.
    expect(feed.encode(sseFrame).toString()).toBe(`id: ${feed.epoch}:1\nevent: progress\ndata: {"contentId":"job-42","progress":40,"stage":"draft","seq":1,"ts":1700000000000}\n\n`);
    // A connection carrying several topics (and a long-poll answer) names the topic of each event.
    expect(own.encode(sseData)).toBe('{"progress":40,"stage":"draft","topic":"content:job-42","seq":1,"ts":1700000000000}');
    expect(feed.encode(sseData)).toBe('{"contentId":"job-42","progress":40,"stage":"draft","topic":"user:alice","seq":1,"ts":1700000000000}');
    // A contentId that is not the topic's own item is data, not repetition.
    const other = await hub.publish('content:job-7', 'progress', { contentId: 'job-42' }, { ts: 5 });
    expect(other.encode(sseStreamData)).toBe('{"contentId":"job-42","seq":1,"ts":5}');
    // What the cut saves on the item's stream, per event (was: the published fields + contentId + topic + seq + ts).
    const before = `id: ${own.epoch}:1\nevent: progress\ndata: {"contentId":"job-42","progress":40,"stage":"draft","topic":"content:job-42","seq":1,"ts":1700000000000}\n\n`;
    expect(before.length - own.encode(sseFrame).length).toBe(',"contentId":"job-42"'.length + ',"topic":"content:job-42"'.length);
  });

  it('wraps non-object data, keeps event names on one line, and leaves unretained messages without an id', async () => {
    const m = await hub.publish('t', 'odd\r\nevent', [1, 2], { ts: 5, retain: false });
    expect(m.encode(sseFrame).toString()).toBe('event: odd event\ndata: {"payload":[1,2],"seq":0,"ts":5}\n\n');
    expect(m.encode(sseData)).toBe('{"payload":[1,2],"topic":"t","seq":0,"ts":5}');
    const empty = await hub.publish('t', 'progress', {}, { ts: 6 });
    expect(empty.encode(sseData)).toBe('{"topic":"t","seq":1,"ts":6}');
    expect(empty.encode(sseStreamData)).toBe('{"seq":1,"ts":6}');
    const text = await hub.publish('t', 'progress', { note: 'line1\nline2' }, { ts: 7 });
    expect(text.encode(sseFrame).toString().split('\n').filter((l) => l.startsWith('data:'))).toHaveLength(1);
  });
});

describe('delivery metrics', () => {
  it('counts every delivery exactly and samples latency evenly beyond the per-message budget', async () => {
    const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });
    const metrics = new GatewayMetrics({ processMetrics: false });
    const tally = new DeliveryTally(hub, metrics, 'sse');
    hub.observe(() => tally.flush());
    const subscribers = 6400;
    for (let i = 0; i < subscribers; i++) hub.subscribe('big', { deliver: (m) => tally.record(m, 100) });
    for (let i = 0; i < 10; i++) hub.subscribe('small', { deliver: (m) => tally.record(m, 50) });
    await hub.publish('big', 'progress', {});
    await hub.publish('small', 'progress', {});
    const value = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values as { value: number; labels: Record<string, unknown>; metricName?: string }[];
    const sseOut = (v: { labels: Record<string, unknown> }) => v.labels.transport === 'sse' && v.labels.direction === 'out';
    const messages = (await value('fanout_messages_total')).find(sseOut)!.value;
    const bytes = (await value('fanout_bytes_total')).find(sseOut)!.value;
    const count = (await value('fanout_delivery_latency_seconds')).find((v) => v.metricName === 'fanout_delivery_latency_seconds_count' && v.labels.transport === 'sse')!.value;
    expect(messages).toBe(subscribers + 10);
    expect(bytes).toBe(subscribers * 100 + 10 * 50);
    expect(count).toBe(LATENCY_SAMPLES_PER_MESSAGE + 10);
  });
});

describe('event ids', () => {
  it('round-trips single and multi-topic positions', async () => {
    const positions = [
      { epoch: 'abc_-1', offset: 0 },
      { epoch: 'Zz9', offset: 123456 },
    ];
    expect(parseEventId(formatCursor(positions), 2, 'Last-Event-ID')).toEqual(positions);
    expect(parseEventId('e:7', 1, 'x')).toEqual([{ epoch: 'e', offset: 7 }]);
  });

  it('rejects malformed ids and the wrong number of positions', async () => {
    for (const bad of ['', 'e', 'e:', ':1', 'e:1:2', 'e:-1', 'e:1e3', 'é:1', `${'a'.repeat(33)}:1`]) {
      expect(() => parseEventId(bad, 1, 'Last-Event-ID'), bad).toThrow(/Last-Event-ID/);
    }
    expect(() => parseEventId('a:1,b:2', 1, 'lastEventId')).toThrow(/2 position\(s\) but the stream has 1 topic/);
    expect(() => parseEventId('a:1', 3, 'lastEventId')).toThrow(/3 topic/);
  });
});

describe('encode once, write many', () => {
  let gw: TestGateway;
  const streams: RawStream[] = [];
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => {
    for (const s of streams) s.destroy();
    await gw.stop();
  });

  it('serializes a message once for 40 subscribers of each stream kind', async () => {
    const token = await gw.userToken('alice');
    const { progress } = gw.gateway.service('content');
    const id = progress.create('alice').id;
    for (let i = 0; i < 20; i++) streams.push(await rawGet(`${gw.url}/api/content/${id}/progress`, { authorization: `Bearer ${token}` }));
    for (let i = 0; i < 20; i++) streams.push(await rawGet(`${gw.url}/v1/stream?topic=content:${id}&topic=user:alice`, { authorization: `Bearer ${token}` }));
    await waitFor(() => streams.every((s) => s.text().includes('event: ready')), 'all streams ready');

    const data = vi.spyOn(sseData, 'encode');
    const streamData = vi.spyOn(sseStreamData, 'encode');
    const frame = vi.spyOn(sseFrame, 'encode');
    const body = vi.spyOn(sseBody, 'encode');
    const stringify = vi.spyOn(JSON, 'stringify');
    await progress.publish(id, 'progress', { progress: 50 });
    const calls = { data: data.mock.calls.length, streamData: streamData.mock.calls.length, frame: frame.mock.calls.length, body: body.mock.calls.length, stringify: stringify.mock.calls.length };
    vi.restoreAllMocks();
    await waitFor(() => streams.every((s) => s.text().includes('"progress":50')), 'every stream to receive it');

    // Two hub messages (content topic and user topic): one frame (and its data) for the
    // single-topic streams, one body (and its data) per topic for the multi-topic streams.
    expect(calls.frame).toBe(1);
    expect(calls.streamData).toBe(1);
    expect(calls.data).toBe(2);
    expect(calls.body).toBe(2);
    expect(calls.stringify).toBeLessThan(10);
  });
});
