// The long-poll fallback over the same ids and history as the streams:
// GET /api/content/:id/progress/poll?after=<id>&wait=<seconds> answers
//   {"events": [{"id", "event", "data"}], "lastEventId": "...", "state": {...}, "more": bool}
// at once when something after `after` is retained (up to POLL_BATCH events), or a
// `reset` event when history no longer covers the gap; otherwise it waits for the next
// event up to `wait` seconds. A waiting poll is a managed connection (caps, drain) whose
// deadline is checked by the shared sweep, so it needs no timer of its own.
import type { ServerResponse } from 'node:http';
import type { HubMessage, Position, Subscriber } from '../core/hub.js';
import type { CloseReason, ManagedConnection, Transport } from '../server/connections.js';
import { nextConnectionId } from '../server/connections.js';
import { HttpError, sendError } from '../server/http-errors.js';
import { formatPosition } from './event-id.js';
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
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** What a poll from `after` gets right now: retained events, a reset, or nothing yet. */
export function pollNow(ctx: StreamContext, topic: string, after: Position): PollAnswer {
  const missed = ctx.hub.since(topic, after, POLL_BATCH);
  if (missed.kind === 'reset') {
    const id = formatPosition(missed.position.epoch, missed.position.offset);
    const reset = JSON.stringify({ id, event: 'reset', data: resetData(ctx, topic, missed.reason, missed.position) });
    return { events: [reset], lastEventId: id, more: false };
  }
  const last = missed.messages.at(-1);
  if (!last) return { events: [], lastEventId: formatPosition(after.epoch, after.offset), more: false };
  return {
    events: missed.messages.map((m) => m.encode(pollEvent)),
    lastEventId: formatPosition(last.epoch, last.offset),
    more: last.offset < ctx.hub.position(topic).offset,
  };
}

/** A poll waiting for the next event of one topic. */
export class LongPoll implements ManagedConnection, Subscriber {
  readonly id = nextConnectionId('poll-');
  readonly openedAt = Date.now();
  private done = false;

  constructor(
    private readonly ctx: StreamContext,
    private readonly res: ServerResponse,
    readonly userKey: string,
    private readonly topic: string,
    private readonly after: Position,
    private readonly deadline: number,
  ) {}

  get transport(): Transport {
    return 'poll';
  }

  start(): void {
    this.ctx.connections.add(this);
    this.ctx.metrics.connectionsOpened.labels('poll').inc();
    this.ctx.hub.subscribe(this.topic, this);
    this.res.once('close', () => this.finish());
  }

  deliver(m: HubMessage): void {
    if (this.done || !m.offset) return;
    const event = m.encode(pollEvent);
    this.ctx.metrics.delivered('poll', m.ts, event.length);
    this.answer({ events: [event], lastEventId: formatPosition(m.epoch, m.offset), more: false });
  }

  /** Cluster mode: the topic's messages are no longer continuous here; the client polls again from its id. */
  interrupted(): void {
    this.close('resync');
  }

  tick(now: number): void {
    if (!this.done && now >= this.deadline) this.answer({ events: [], lastEventId: formatPosition(this.after.epoch, this.after.offset), more: false });
  }

  close(reason: CloseReason): void {
    if (this.done) return;
    this.finish();
    if (reason === 'shutdown') sendError(this.res, new HttpError(503, 'draining', 'the gateway is shutting down; poll again (another instance will answer)', { 'retry-after': '1' }));
    else sendError(this.res, new HttpError(503, reason, `the poll was ended by the server (${reason}); poll again`, { 'retry-after': '1' }));
  }

  private answer(answer: PollAnswer): void {
    this.finish();
    sendPollAnswer(this.res, answer, this.ctx.stateOf(this.topic));
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.ctx.hub.unsubscribe(this.topic, this);
    this.ctx.connections.remove(this);
  }
}
