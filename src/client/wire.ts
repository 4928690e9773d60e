// What the gateway's read API sends, turned into the client's types. The stream's frames,
// the long-poll's answers and a subscription's catch-up poll all carry the same event
// data (`topic`, `seq`, `ts` and the published fields) and the same positions, so one
// reading of them serves the SSE transport, the long-poll transport and subscription.ts.
import { FanoutHttpError, httpError, type FetchLike } from './http.js';
import { formatStart, type Position, type Start } from './position.js';
import type { FanoutMessage, MessageData, ResetInfo } from './types.js';

/** The body of a `/v1/poll` answer. */
export interface PollAnswer {
  events: { id: string; event: string; data: MessageData }[];
  lastEventId: string;
  more: boolean;
}

export function isPollAnswer(value: unknown): value is PollAnswer {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return Array.isArray(v.events) && typeof v.lastEventId === 'string' && typeof v.more === 'boolean';
}

/** `/v1/poll` for these topics after `after` (a cursor: one start per topic, comma-joined), waiting up to `waitS`. */
export function pollUrl(base: string, topics: readonly string[], after: string, waitS: number): string {
  return `${base}/v1/poll?${topicQuery(topics)}&after=${encodeURIComponent(after)}&wait=${waitS}`;
}

/** The repeated `topic=` parameters of a multiplexed request, in cursor order. */
export function topicQuery(topics: readonly string[]): string {
  return topics.map((t) => `topic=${encodeURIComponent(t)}`).join('&');
}

/**
 * One immediate poll of one topic from `after` (no waiting): how a subscription fills a
 * gap by itself (joined a live topic late, missed events across a hand-over, a reset
 * reported for someone else's position).
 */
export async function fetchSince(base: string, token: string, fetcher: FetchLike, topic: string, after: Start): Promise<PollAnswer> {
  const url = pollUrl(base, [topic], formatStart(after), 0);
  const res = await fetcher(url, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
  if (!res.ok) throw await httpError(res, 'the catch-up poll');
  const body: unknown = await res.json();
  if (!isPollAnswer(body)) throw new FanoutHttpError(502, 'bad_answer', "the catch-up poll answer is not the gateway's shape", topic, undefined);
  return { ...body, events: body.events.map((ev) => ({ ...ev, data: withImpliedFields(ev.data, topic) ?? ev.data })) };
}

/**
 * The event data as apps see it, with the fields the wire leaves out because the stream
 * implies them: `topic` on a single-topic stream, and `contentId` on an item's own topic
 * `content:<contentId>`. Undefined when the topic is neither sent nor implied.
 */
export function withImpliedFields(data: MessageData, streamTopic: string | undefined): MessageData | undefined {
  const topic = typeof data.topic === 'string' ? data.topic : streamTopic;
  if (topic === undefined) return undefined;
  const contentId = data.contentId === undefined && topic.startsWith(CONTENT_TOPIC) ? topic.slice(CONTENT_TOPIC.length) : undefined;
  if (topic === data.topic && contentId === undefined) return data;
  return { ...data, topic, ...(contentId === undefined ? {} : { contentId }) };
}

const CONTENT_TOPIC = 'content:';

/** An SSE frame's `data`, when it is a JSON object (anything else is not the gateway's and is ignored). */
export function parseEventData(raw: string): MessageData | undefined {
  try {
    const value: unknown = JSON.parse(raw);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as MessageData;
  } catch {
    // fall through
  }
  return undefined;
}

/** A message from an event name, its data and its position. */
export function toMessage(event: string, data: MessageData, position: Position | undefined): FanoutMessage {
  return {
    topic: data.topic,
    event,
    id: position ? `${position.epoch}:${position.offset}` : '',
    seq: typeof data.seq === 'number' ? data.seq : 0,
    ts: typeof data.ts === 'number' ? data.ts : 0,
    data,
  };
}

/** A reset's info from the data of a `reset` event (stream or poll). */
export function toResetInfo(data: MessageData, fallback: Position | undefined): ResetInfo | undefined {
  const epoch = typeof data.epoch === 'string' ? data.epoch : fallback?.epoch;
  const offset = typeof data.seq === 'number' ? data.seq : fallback?.offset;
  if (typeof data.topic !== 'string' || epoch === undefined || offset === undefined) return undefined;
  return {
    topic: data.topic,
    reason: typeof data.reason === 'string' ? data.reason : 'unknown',
    message: typeof data.message === 'string' ? data.message : 'history does not cover the gap',
    position: { epoch, offset },
    state: data.state ?? null,
  };
}
