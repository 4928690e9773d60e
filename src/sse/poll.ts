// The long-poll fallback over the same ids and history as the streams:
//   GET /api/content/:id/progress/poll?after=<id>&wait=<seconds>          one content item
//   GET /v1/poll?topic=a&topic=b&after=<cursor>&wait=<seconds>             many topics (the
//       client library's fallback when SSE is blocked; ids as on /v1/stream, see event-id.ts)
// answer
//   {"events": [{"id", "event", "data"}], "lastEventId": "...", "state": {...}, "more": bool}
// at once when something after `after` is retained (up to POLL_BATCH events, in order per
// topic, topics in the order given), or a `reset` event for each topic whose history no
// longer covers the gap; otherwise it waits for the next event of any of its topics up
// to `wait` seconds. An event's `id` is its position in its own topic; `lastEventId` is the
// cursor to poll with next (one position per topic, comma-joined). A waiting poll is a
// managed connection (caps, drain) whose deadline is checked by the shared sweep, so it
// needs no timer of its own.
import type { ServerResponse } from 'node:http';
import type { HubMessage, Position, Subscriber } from '../core/hub.js';
import type { CloseReason, ManagedConnection, Transport } from '../server/connections.js';
import { nextConnectionId } from '../server/connections.js';
import { HttpError, sendError, writeHead } from '../server/http-errors.js';
import { formatCursor, formatPosition } from '../core/event-id.js';
import { resetData, type StreamContext } from './stream.js';
import { pollEvent } from './wire.js';

/** Most events in one answer; `more: true` tells the client to poll again at once. */
export const POLL_BATCH = 100;
export const MAX_POLL_WAIT_S = 60;
export const DEFAULT_POLL_WAIT_S = 25;

export interface PollAnswer {
  events: string[];
  lastEventId: string;
  more: boolean;
}

/** Writes a poll answer; the events are pre-encoded JSON, shared with every other poller. */
export function sendPollAnswer(res: ServerResponse, answer: PollAnswer, state: unknown): void {
  const body = `{"events":[${answer.events.join(',')}],"lastEventId":${JSON.stringify(answer.lastEventId)},"state":${JSON.stringify(state ?? null)},"more":${answer.more}}`;
  writeHead(res, 200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/**
 * What a poll from `after` (one position per topic) gets right now: retained events, a
 * reset per topic whose gap history no longer covers, or nothing yet. `after` is not
 * modified.
 */
export function pollNow(ctx: StreamContext, topics: readonly string[], after: readonly Position[]): PollAnswer {
  const cursor = after.slice();
  const events: string[] = [];
  let more = false;
  for (let i = 0; i < topics.length; i++) {
    const topic = topics[i]!;
    const room = POLL_BATCH - events.length;
    if (room <= 0) {
      const now = ctx.hub.position(topic);
      more ||= cursor[i]!.epoch !== now.epoch || cursor[i]!.offset < now.offset;
      continue;
    }
    const missed = ctx.hub.since(topic, cursor[i]!, room);
    if (missed.kind === 'reset') {
      cursor[i] = missed.position;
      const id = formatPosition(missed.position.epoch, missed.position.offset);
      events.push(JSON.stringify({ id, event: 'reset', data: resetData(ctx, topic, missed.reason, missed.position) }));
      continue;
    }
    const last = missed.messages.at(-1);
    if (!last) continue;
    for (const m of missed.messages) events.push(m.encode(pollEvent));
    cursor[i] = { epoch: last.epoch, offset: last.offset };
    more ||= last.offset < ctx.hub.position(topic).offset;
  }
  return { events, lastEventId: formatCursor(cursor), more };
}

/** A poll waiting for the next event of any of its topics. */
export class LongPoll implements ManagedConnection, Subscriber {
  readonly id = nextConnectionId('poll-');
  readonly openedAt = Date.now();
  private done = false;

  constructor(
    private readonly ctx: StreamContext,
    private readonly res: ServerResponse,
    readonly userKey: string,
    private readonly topics: readonly string[],
    private readonly after: readonly Position[],
    private readonly deadline: number,
    /** Token expiry (ms since the epoch): the poll is answered `token_expired` then, and nothing published after it is sent. */
    private readonly expiresAt: number,
  ) {}

  get transport(): Transport {
    return 'poll';
  }

  start(): void {
    this.ctx.connections.add(this);
    this.ctx.metrics.connectionsOpened.labels('poll').inc();
    for (const topic of this.topics) this.ctx.hub.subscribe(topic, this);
    this.res.once('close', () => this.finish());
  }

  deliver(m: HubMessage): void {
    if (this.done || !m.offset) return;
    if (m.ts >= this.expiresAt) return this.close('token_expired');
    const i = this.topics.indexOf(m.topic);
    if (i < 0) return;
    const event = m.encode(pollEvent);
    this.ctx.metrics.delivered('poll', m.ts, event.length);
    const cursor = this.after.slice();
    cursor[i] = { epoch: m.epoch, offset: m.offset };
    this.answer({ events: [event], lastEventId: formatCursor(cursor), more: false });
  }

  /** Cluster mode: the topic's messages are no longer continuous here; the client polls again from its id. */
  interrupted(): void {
    this.close('resync');
  }

  tick(now: number): void {
    if (!this.done && now >= this.expiresAt) return this.close('token_expired');
    if (!this.done && now >= this.deadline) this.answer({ events: [], lastEventId: formatCursor(this.after), more: false });
  }

  close(reason: CloseReason): void {
    if (this.done) return;
    this.finish();
    if (reason === 'shutdown') sendError(this.res, new HttpError(503, 'draining', 'the gateway is shutting down; poll again (another instance will answer)', { 'retry-after': '1' }));
    else if (reason === 'token_expired') {
      sendError(this.res, new HttpError(401, 'token_expired', `the key used for this poll expired at ${new Date(this.expiresAt).toISOString()}; poll again with a fresh token`, { 'www-authenticate': 'Bearer error="invalid_token"' }));
    } else sendError(this.res, new HttpError(503, reason, `the poll was ended by the server (${reason}); poll again`, { 'retry-after': '1' }));
  }

  private answer(answer: PollAnswer): void {
    this.finish();
    // A single-topic poll (a content item's own) carries that item's state; a multi-topic one has no single state.
    sendPollAnswer(this.res, answer, this.topics.length === 1 ? this.ctx.stateOf(this.topics[0]!) : null);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    for (const topic of this.topics) this.ctx.hub.unsubscribe(topic, this);
    this.ctx.connections.remove(this);
  }
}
