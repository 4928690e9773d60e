// The SSE wire format. Hub messages become frames through `WireEncoder`s, so each
// message is serialized once per format and the same bytes go to every subscriber:
//
//   sseFrame   id: <epoch>:<offset>\nevent: <event>\ndata: <json>\n\n   (single-topic streams)
//   sseBody    event: <event>\ndata: <json>\n                          (multi-topic streams; the
//              connection appends its own `id:` line, see event-id.ts)
//   pollEvent  {"id": ..., "event": ..., "data": <json>}                 (long-poll answers)
//
// The JSON `data` carries the published fields plus `seq` (the per-topic offset) and `ts`
// (server publish time, ms since the epoch); the server's fields come last so a publisher
// can never override them. Nothing is repeated that the subscriber already knows:
// - `topic` only where one connection carries several topics (multi-topic streams and
//   long-poll answers); a single-topic stream's topic is its URL;
// - `contentId` (added by the progress publisher for the owner's feed, which mixes items)
//   is left out of the item's own topic `content:<contentId>`, whose URL names it.
import type { HubMessage, WireEncoder } from '../core/hub.js';
import { CONTENT_TOPIC_PREFIX } from '../core/progress-topics.js';
import { formatPosition } from '../core/event-id.js';

const LINE_BREAK = /[\r\n]/;

/** An event name is one line; the hub accepts any string, the wire cannot. */
function eventName(name: string): string {
  return LINE_BREAK.test(name) ? name.replace(/[\r\n]+/g, ' ') : name;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/** The published fields as JSON, without a `contentId` that only repeats the item's own topic; shared by the formats below. */
const publishedJson: WireEncoder<string> = {
  name: 'sse-published',
  encode(m: HubMessage): string {
    if (!isPlainObject(m.data)) return `{"payload":${JSON.stringify(m.data ?? null)}}`;
    const data = m.data;
    if (typeof data.contentId === 'string' && m.topic.length === CONTENT_TOPIC_PREFIX.length + data.contentId.length && m.topic === CONTENT_TOPIC_PREFIX + data.contentId) {
      const { contentId: _redundant, ...rest } = data;
      return JSON.stringify(rest);
    }
    return JSON.stringify(data);
  },
};

function withServerFields(published: string, tail: string): string {
  return published.length === 2 ? '{' + tail : published.slice(0, -1) + ',' + tail;
}

/** The `data:` JSON where one connection carries several topics (multi-topic streams, long-poll): the topic is named. */
export const sseData: WireEncoder<string> = {
  name: 'sse-data',
  encode(m: HubMessage): string {
    return withServerFields(m.encode(publishedJson), `"topic":${JSON.stringify(m.topic)},"seq":${m.offset},"ts":${m.ts}}`);
  },
};

/** The `data:` JSON of a single-topic stream: its URL names the topic, so the data does not. */
export const sseStreamData: WireEncoder<string> = {
  name: 'sse-stream-data',
  encode(m: HubMessage): string {
    return withServerFields(m.encode(publishedJson), `"seq":${m.offset},"ts":${m.ts}}`);
  },
};

/** A complete frame (single-topic streams) whose id is the message's own position (messages not retained carry no id). */
export const sseFrame: WireEncoder<Buffer> = {
  name: 'sse-frame',
  encode(m: HubMessage): Buffer {
    const id = m.offset ? `id: ${formatPosition(m.epoch, m.offset)}\n` : '';
    return Buffer.from(`${id}event: ${eventName(m.event)}\ndata: ${m.encode(sseStreamData)}\n\n`);
  },
};

/** A frame without its id line and final blank line: the connection completes it. */
export const sseBody: WireEncoder<Buffer> = {
  name: 'sse-body',
  encode(m: HubMessage): Buffer {
    return Buffer.from(`event: ${eventName(m.event)}\ndata: ${m.encode(sseData)}\n`);
  },
};

/** One element of a long-poll answer's `events` array. */
export const pollEvent: WireEncoder<string> = {
  name: 'poll-event',
  encode(m: HubMessage): string {
    return `{"id":${JSON.stringify(formatPosition(m.epoch, m.offset))},"event":${JSON.stringify(m.event)},"data":${m.encode(sseData)}}`;
  },
};

/** Keeps proxies and the client's idle detection satisfied; a comment, so no event fires. */
export const HEARTBEAT = Buffer.from(': ping\n\n');

/** A frame the server writes to one connection (ready, reset, error, shutdown). */
export function controlFrame(event: string, data: unknown, id?: string, retryMs?: number): string {
  return `${retryMs === undefined ? '' : `retry: ${retryMs}\n`}${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
