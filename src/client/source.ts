// The connection: one multiplexed stream (`/v1/stream?topic=…`) carrying every topic this
// client (or, as the cross-tab leader, every tab) follows, so a page never spends more
// than one of the browser's six connections per origin.
//
// It owns:
// - the topic set and a cursor per topic (the position to resume from); changing the set
//   reopens the stream, resuming each topic exactly where it was (`start`/`now` for a new
//   topic);
// - reconnection with jittered exponential back-off, prompt reconnection on the server's
//   `shutdown` (its `retry:` is already jittered), and a fresh key from `token()` before
//   every attempt (immediately again after a 401 or `token_expired`);
// - the fallback: when SSE fails `sseFailuresBeforePolling` times in a row without
//   reaching `ready` (blocked, or buffered by a proxy so `ready` never arrives within
//   `readyTimeoutMs`), it long-polls `/v1/poll` with the same cursor, and every
//   `sseRetryMs` (doubling up to `sseRetryMaxMs`) tries SSE again; a stream that reaches
//   `ready` takes over;
// - liveness: after `ready`, no byte (not even the server's `: ping`) for `idleTimeoutMs`
//   means the stream is dead, whatever TCP thinks.
//
// It reports what arrives to a `SourceEvents` listener and never deduplicates: the
// subscriptions downstream keep their own positions (see subscription.ts), which is what
// makes every switch — reconnect, fallback, hand-over to another tab — free of loss and
// duplicates.
import { Backoff, Wakeup } from './backoff.js';
import { FanoutHttpError, httpError, isAbort, type FetchLike, type TokenSource } from './http.js';
import { formatStart, parseCursor, parsePosition, type Position, type Start } from './position.js';
import { SseParser, type SseEvent } from './sse-parser.js';
import type { ConnectionState, FanoutErrorInfo, FanoutMessage, MessageData, ResetInfo } from './types.js';

/** What a source reports. Dispatcher and the cross-tab leader implement it. */
export interface SourceEvents {
  /** An event of a followed topic; `position` is undefined for a message that is not retained. */
  message(message: FanoutMessage, position: Position | undefined): void;
  /** Everything up to these positions has been delivered (the stream's `ready`, a poll's `lastEventId`). */
  checkpoint(positions: ReadonlyMap<string, Position>): void;
  /** The server could not resume a topic from where this source asked; it continues from `info.position`. */
  reset(info: ResetInfo): void;
  /** The server refuses a topic (unknown, forbidden, invalid): it was dropped from the set. */
  refused(topic: string, error: FanoutErrorInfo): void;
  /** The server said nothing more will come for this topic (204: a finished content item). */
  ended(topic: string): void;
  state(state: ConnectionState): void;
  /** A failed attempt (the source keeps trying). */
  error(error: FanoutErrorInfo): void;
}

export interface SourceTiming {
  /** Bound on waiting for the server's `ready` after opening a stream (a buffering proxy never lets it through). */
  readyTimeoutMs: number;
  /** After `ready`, silence longer than this (no event, no heartbeat) means the stream is dead. */
  idleTimeoutMs: number;
  /** Reconnect back-off. */
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Consecutive SSE attempts that fail before reaching `ready` before falling back to long-poll. */
  sseFailuresBeforePolling: number;
  /** While polling, first delay before trying SSE again; doubles after each failed try up to the max. */
  sseRetryMs: number;
  sseRetryMaxMs: number;
  /** Long-poll wait (seconds, the server allows up to 60). */
  pollWaitS: number;
  /** Changes of the topic set within this window reopen the stream once. */
  topicChangeDelayMs: number;
}

export const DEFAULT_TIMING: SourceTiming = {
  readyTimeoutMs: 10_000,
  idleTimeoutMs: 45_000,
  backoffInitialMs: 500,
  backoffMaxMs: 30_000,
  sseFailuresBeforePolling: 2,
  sseRetryMs: 30_000,
  sseRetryMaxMs: 300_000,
  pollWaitS: 25,
  topicChangeDelayMs: 10,
};

export interface SourceOptions {
  /** Gateway base URL (`http://host:port`, or '' for same-origin in a browser). */
  url: string;
  token: TokenSource;
  fetch: FetchLike;
  /** `auto`: SSE, falling back to long-poll; `sse` or `poll` to force one. */
  transport: 'auto' | 'sse' | 'poll';
  timing: SourceTiming;
  /** Delay the first connection (a new cross-tab leader collects the other tabs' positions first). */
  startDelayMs?: number;
}

export interface SourceStats {
  connects: number;
  opens: number;
  polls: number;
  fallbacks: number;
  restores: number;
}

interface TopicCursor {
  start: Start;
  /** The server has confirmed a position; before that an earlier start may still replace `start`. */
  confirmed: boolean;
}

type Outcome =
  | { kind: 'changed' }
  | { kind: 'closed' }
  | { kind: 'polled' }
  | { kind: 'ended'; topics: string[] }
  | { kind: 'shutdown'; retryMs: number }
  | { kind: 'auth'; error: FanoutErrorInfo }
  | { kind: 'refused'; topic: string; error: FanoutErrorInfo }
  | { kind: 'failed'; error: FanoutErrorInfo; opened: boolean; retryAfterMs?: number };

/** One connection attempt (stream or poll): aborting it records why. */
class Attempt {
  readonly controller = new AbortController();
  outcome: Outcome | undefined;
  opened = false;

  end(outcome: Outcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.controller.abort();
  }
}

/** The body of a `/v1/poll` answer. */
export interface PollAnswer {
  events: { id: string; event: string; data: MessageData }[];
  lastEventId: string;
  more: boolean;
}

/**
 * One immediate poll of one topic from `after` (no waiting): how a subscription fills a
 * gap by itself (joined a live topic late, missed events across a hand-over, a reset
 * reported for someone else's position).
 */
export async function fetchSince(base: string, token: string, fetcher: FetchLike, topic: string, after: Start): Promise<PollAnswer> {
  const url = `${base}/v1/poll?topic=${encodeURIComponent(topic)}&after=${encodeURIComponent(formatStart(after))}&wait=0`;
  const res = await fetcher(url, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
  if (!res.ok) throw await httpError(res, 'the catch-up poll');
  const body: unknown = await res.json();
  if (!isPollAnswer(body)) throw new FanoutHttpError(502, 'bad_answer', "the catch-up poll answer is not the gateway's shape", topic, undefined);
  return { ...body, events: body.events.map((ev) => ({ ...ev, data: withImpliedFields(ev.data, topic) ?? ev.data })) };
}

function isPollAnswer(value: unknown): value is PollAnswer {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return Array.isArray(v.events) && typeof v.lastEventId === 'string' && typeof v.more === 'boolean';
}

function info(code: string, message: string, extra: { status?: number; topic?: string; fatal?: boolean } = {}): FanoutErrorInfo {
  return { code, message, fatal: extra.fatal ?? false, ...(extra.status === undefined ? {} : { status: extra.status }), ...(extra.topic === undefined ? {} : { topic: extra.topic }) };
}

function errorInfo(err: FanoutHttpError, fatal = false): FanoutErrorInfo {
  return info(err.code, err.message, { status: err.status, topic: err.topic, fatal });
}

function parseData(raw: string): MessageData | undefined {
  try {
    const value: unknown = JSON.parse(raw);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as MessageData;
  } catch {
    // fall through
  }
  return undefined;
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

export class Source {
  private readonly topics = new Map<string, TopicCursor>();
  private readonly wakeup = new Wakeup();
  /** Cut short only by close(), not by topic changes (the hand-over wait collects those). */
  private readonly startGate = new Wakeup();
  private readonly backoff: Backoff;
  private current: Attempt | undefined;
  private closed = false;
  private mode: 'sse' | 'poll';
  private probeAt = Infinity;
  private probeDelay: number;
  private sseFailures = 0;
  private authFailures = 0;
  private everOpened = false;
  private stateValue: ConnectionState = 'idle';
  private changeTimer: ReturnType<typeof setTimeout> | undefined;
  private startDelayMs: number;
  readonly stats: SourceStats = { connects: 0, opens: 0, polls: 0, fallbacks: 0, restores: 0 };

  constructor(
    private readonly options: SourceOptions,
    private readonly events: SourceEvents,
  ) {
    const t = options.timing;
    this.backoff = new Backoff({ initialMs: t.backoffInitialMs, maxMs: t.backoffMaxMs });
    this.probeDelay = t.sseRetryMs;
    this.mode = options.transport === 'poll' ? 'poll' : 'sse';
    this.startDelayMs = options.startDelayMs ?? 0;
    void this.run();
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  get transport(): 'sse' | 'poll' {
    return this.mode;
  }

  /** The topics followed and where each resumes. */
  cursor(): ReadonlyMap<string, Start> {
    return new Map([...this.topics].map(([t, c]) => [t, c.start]));
  }

  /** The positions the server has confirmed: everything up to each has been delivered (a checkpoint). */
  confirmedPositions(): Map<string, Position> {
    const out = new Map<string, Position>();
    for (const [topic, c] of this.topics) if (c.confirmed && typeof c.start === 'object') out.set(topic, c.start);
    return out;
  }

  /**
   * Replaces the topic set. A new topic starts at the given start, and so does a topic the
   * server has not confirmed a position for yet; a confirmed topic keeps its own cursor
   * (subscriptions behind it catch up by themselves).
   */
  setTopics(wanted: ReadonlyMap<string, Start>): void {
    if (this.closed) return;
    let changed = false;
    for (const [topic, start] of wanted) {
      const cur = this.topics.get(topic);
      if (!cur) {
        this.topics.set(topic, { start, confirmed: false });
        changed = true;
      } else if (!cur.confirmed && formatStart(cur.start) !== formatStart(start)) {
        // Not connected with it yet: follow the wanted start, earlier or later (a new
        // cross-tab leader replaces the stale positions it knew with fresh ones).
        cur.start = start;
        changed = true;
      }
    }
    for (const topic of this.topics.keys()) {
      if (!wanted.has(topic)) {
        this.topics.delete(topic);
        changed = true;
      }
    }
    if (changed) this.scheduleChange();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.changeTimer !== undefined) clearTimeout(this.changeTimer);
    this.current?.end({ kind: 'closed' });
    this.wakeup.wake();
    this.startGate.wake();
    this.setState('closed');
  }

  private scheduleChange(): void {
    if (this.changeTimer !== undefined) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      this.current?.end({ kind: 'changed' });
      this.wakeup.wake();
    }, this.options.timing.topicChangeDelayMs);
  }

  private setState(state: ConnectionState): void {
    if (this.stateValue === state || (this.stateValue === 'closed' && state !== 'closed')) return;
    this.stateValue = state;
    this.events.state(state);
  }

  private async run(): Promise<void> {
    if (this.startDelayMs > 0) await this.startGate.wait(this.startDelayMs);
    while (!this.closed) {
      if (this.topics.size === 0) {
        this.setState('idle');
        await this.wakeup.wait();
        continue;
      }
      const polling = this.mode === 'poll';
      const phase = polling && Date.now() < this.probeAt ? 'poll' : polling ? 'probe' : 'stream';
      let outcome: Outcome;
      try {
        outcome = phase === 'poll' ? await this.pollOnce() : await this.streamOnce(phase === 'probe');
      } catch (err) {
        // A bug or an unexpected runtime error: report it and keep the connection alive.
        outcome = { kind: 'failed', error: info('client_error', err instanceof Error ? err.message : String(err)), opened: false };
      }
      await this.settle(outcome, phase);
    }
  }

  /** What to do after an attempt ends. */
  private async settle(outcome: Outcome, phase: 'poll' | 'probe' | 'stream'): Promise<void> {
    switch (outcome.kind) {
      case 'changed':
      case 'closed':
      case 'polled':
        return;
      case 'ended':
        for (const topic of outcome.topics) {
          if (this.topics.delete(topic)) this.events.ended(topic);
        }
        return;
      case 'refused':
        if (this.topics.delete(outcome.topic)) this.events.refused(outcome.topic, outcome.error);
        return;
      case 'shutdown':
        this.backoff.reset();
        if (this.mode === 'sse') this.setState('reconnecting');
        await this.wakeup.wait(outcome.retryMs);
        return;
      case 'auth':
        this.events.error(outcome.error);
        // The first 401 in a row retries at once with a new key; then back off (a key source that keeps failing).
        if (++this.authFailures > 1) await this.wakeup.wait(this.backoff.next());
        return;
      case 'failed': {
        this.events.error(outcome.error);
        const floor = outcome.retryAfterMs ?? 0;
        if (phase === 'poll') {
          await this.wakeup.wait(Math.max(floor, this.backoff.next()));
          return;
        }
        if (phase === 'probe') {
          this.probeDelay = Math.min(this.probeDelay * 2, this.options.timing.sseRetryMaxMs);
          this.probeAt = Date.now() + this.probeDelay;
          return;
        }
        if (outcome.opened) {
          // A live stream dropped (network blip, proxy timeout): come back quickly, jittered.
          this.backoff.reset();
          this.setState('reconnecting');
          await this.wakeup.wait(Math.max(floor, this.backoff.next()));
          return;
        }
        this.sseFailures++;
        if (this.options.transport === 'auto' && this.sseFailures >= this.options.timing.sseFailuresBeforePolling) {
          this.mode = 'poll';
          this.stats.fallbacks++;
          this.probeDelay = this.options.timing.sseRetryMs;
          this.probeAt = Date.now() + this.probeDelay;
          this.backoff.reset();
          return;
        }
        this.setState(this.everOpened ? 'reconnecting' : 'connecting');
        await this.wakeup.wait(Math.max(floor, this.backoff.next()));
        return;
      }
    }
  }

  private begin(): Attempt {
    const attempt = new Attempt();
    this.current = attempt;
    return attempt;
  }

  /** The key for an attempt, or the outcome that ends it: getToken() failed, or the attempt ended meanwhile. */
  private async tokenFor(attempt: Attempt): Promise<string | Outcome> {
    let token: string;
    try {
      token = await this.options.token();
    } catch (err) {
      return { kind: 'failed', error: info('token_error', `getToken() failed: ${err instanceof Error ? err.message : String(err)}`), opened: false };
    }
    return attempt.outcome ?? token;
  }

  private topicQuery(topics: readonly string[]): string {
    return topics.map((t) => `topic=${encodeURIComponent(t)}`).join('&');
  }

  private classify(err: FanoutHttpError, opened: boolean): Outcome {
    if (err.isAuth) return { kind: 'auth', error: errorInfo(err) };
    if (err.isTopicRefusal && err.topic !== undefined && this.topics.has(err.topic)) return { kind: 'refused', topic: err.topic, error: errorInfo(err, true) };
    return { kind: 'failed', error: errorInfo(err), opened, retryAfterMs: err.retryAfterMs };
  }

  /** Records positions the server confirmed for the attempt's topics. */
  private confirm(topic: string, position: Position): void {
    const cur = this.topics.get(topic);
    if (!cur) return;
    cur.start = position;
    cur.confirmed = true;
  }

  private async streamOnce(probing: boolean): Promise<Outcome> {
    const topics = [...this.topics.keys()];
    const starts = topics.map((t) => this.topics.get(t)!.start);
    if (!probing) this.setState(this.everOpened ? 'reconnecting' : 'connecting');
    const attempt = this.begin();
    const timing = this.options.timing;
    const token = await this.tokenFor(attempt);
    if (typeof token !== 'string') return token;
    const url = `${this.options.url}/v1/stream?${this.topicQuery(topics)}&lastEventId=${encodeURIComponent(starts.map(formatStart).join(','))}`;
    this.stats.connects++;
    const readyTimer = setTimeout(
      () => attempt.end({ kind: 'failed', error: info('ready_timeout', `no "ready" within ${timing.readyTimeoutMs} ms: the stream is blocked or buffered on the way (a proxy without X-Accel-Buffering support?)`), opened: false }),
      timing.readyTimeoutMs,
    );
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    const touch = (): void => {
      if (!attempt.opened) return;
      if (idleTimer !== undefined) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => attempt.end({ kind: 'failed', error: info('idle_timeout', `nothing received for ${timing.idleTimeoutMs} ms, not even a heartbeat`), opened: true }), timing.idleTimeoutMs);
    };
    let retryHint = 1000;
    const parser = new SseParser({
      event: (e) => {
        if (attempt.outcome) return;
        this.onFrame(e, attempt, topics, retryHint);
        if (attempt.opened) {
          clearTimeout(readyTimer);
          touch();
        }
      },
      retry: (ms) => (retryHint = ms),
    });
    try {
      const res = await this.options.fetch(url, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` }, signal: attempt.controller.signal, cache: 'no-store' });
      if (attempt.outcome) return attempt.outcome;
      if (res.status === 204) {
        await res.body?.cancel();
        return { kind: 'ended', topics };
      }
      if (!res.ok) return this.classify(await httpError(res, 'the stream'), false);
      if (!res.body) return { kind: 'failed', error: info('no_body', 'the stream response has no body'), opened: false };
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (attempt.outcome) break;
        if (done) break;
        touch();
        parser.feed(decoder.decode(value, { stream: true }));
        if (attempt.outcome) break;
      }
      if (attempt.outcome) return attempt.outcome;
      return { kind: 'failed', error: info('stream_ended', 'the server ended the stream without saying why'), opened: attempt.opened };
    } catch (err) {
      if (attempt.outcome) return attempt.outcome;
      if (isAbort(err)) return { kind: 'changed' };
      return { kind: 'failed', error: info('network', `the stream failed: ${err instanceof Error ? err.message : String(err)}`), opened: attempt.opened };
    } finally {
      clearTimeout(readyTimer);
      if (idleTimer !== undefined) clearTimeout(idleTimer);
      attempt.controller.abort();
      if (this.current === attempt) this.current = undefined;
    }
  }

  /** One frame of the stream. */
  private onFrame(e: SseEvent, attempt: Attempt, topics: readonly string[], retryHint: number): void {
    const data = parseData(e.data);
    switch (e.event) {
      case 'ready': {
        const positions = e.id === undefined ? undefined : parseCursor(e.id, topics.length);
        if (!positions) return attempt.end({ kind: 'failed', error: info('bad_ready', `the ready event's id ${JSON.stringify(e.id)} is not a cursor for ${topics.length} topic(s)`), opened: false });
        const map = new Map<string, Position>();
        topics.forEach((t, i) => {
          if (!this.topics.has(t)) return;
          this.confirm(t, positions[i]!);
          map.set(t, positions[i]!);
        });
        attempt.opened = true;
        this.everOpened = true;
        this.stats.opens++;
        this.sseFailures = 0;
        this.authFailures = 0;
        this.backoff.reset();
        if (this.mode === 'poll') {
          this.mode = 'sse';
          this.stats.restores++;
          this.probeDelay = this.options.timing.sseRetryMs;
          this.probeAt = Infinity;
        }
        this.setState('open');
        this.events.checkpoint(map);
        return;
      }
      case 'reset': {
        if (!data) return;
        const reset = toResetInfo(data, undefined);
        if (!reset || !this.topics.has(reset.topic)) return;
        this.confirm(reset.topic, reset.position);
        this.events.reset(reset);
        return;
      }
      case 'shutdown':
        return attempt.end({ kind: 'shutdown', retryMs: e.retry ?? retryHint });
      case 'error': {
        const code = typeof data?.code === 'string' ? data.code : 'server_error';
        const message = typeof data?.message === 'string' ? data.message : 'the server closed the stream';
        if (code === 'token_expired') return attempt.end({ kind: 'auth', error: info(code, message) });
        return attempt.end({ kind: 'failed', error: info(code, message), opened: attempt.opened });
      }
      default: {
        // A single-topic stream does not repeat its topic in every event (its URL names it).
        const full = data && withImpliedFields(data, topics.length === 1 ? topics[0] : undefined);
        if (!full || !this.topics.has(full.topic)) return;
        const i = topics.indexOf(full.topic);
        let position: Position | undefined;
        if (e.id !== undefined && i >= 0) {
          position = topics.length === 1 ? parsePosition(e.id) : parseCursor(e.id, topics.length)?.[i];
          if (position) this.confirm(full.topic, position);
        }
        this.events.message(toMessage(e.event, full, position), position);
      }
    }
  }

  private async pollOnce(): Promise<Outcome> {
    this.setState('polling');
    const topics = [...this.topics.keys()];
    const after = topics.map((t) => formatStart(this.topics.get(t)!.start)).join(',');
    const attempt = this.begin();
    const token = await this.tokenFor(attempt);
    if (typeof token !== 'string') return token;
    const untilProbe = Math.floor((this.probeAt - Date.now()) / 1000);
    const wait = Math.max(0, Math.min(this.options.timing.pollWaitS, untilProbe));
    const url = `${this.options.url}/v1/poll?${this.topicQuery(topics)}&after=${encodeURIComponent(after)}&wait=${wait}`;
    const timeout = setTimeout(() => attempt.end({ kind: 'failed', error: info('poll_timeout', `the long-poll did not answer within ${wait + 15} s`), opened: false }), (wait + 15) * 1000);
    this.stats.polls++;
    try {
      const res = await this.options.fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: attempt.controller.signal, cache: 'no-store' });
      if (attempt.outcome) return attempt.outcome;
      if (!res.ok) return this.classify(await httpError(res, 'the long-poll'), false);
      const body: unknown = await res.json();
      if (attempt.outcome) return attempt.outcome;
      if (!isPollAnswer(body)) return { kind: 'failed', error: info('bad_answer', 'the long-poll answer is not the gateway\'s shape'), opened: false };
      this.applyPoll(body, topics);
      this.authFailures = 0;
      this.backoff.reset();
      return { kind: 'polled' };
    } catch (err) {
      if (attempt.outcome) return attempt.outcome;
      if (isAbort(err)) return { kind: 'changed' };
      return { kind: 'failed', error: info('network', `the long-poll failed: ${err instanceof Error ? err.message : String(err)}`), opened: false };
    } finally {
      clearTimeout(timeout);
      if (this.current === attempt) this.current = undefined;
    }
  }

  private applyPoll(body: PollAnswer, topics: readonly string[]): void {
    for (const ev of body.events) {
      const data = ev.data && withImpliedFields(ev.data, undefined);
      if (!data || !this.topics.has(data.topic)) continue;
      const position = parsePosition(ev.id);
      if (ev.event === 'reset') {
        const reset = toResetInfo(data, position);
        if (!reset) continue;
        this.confirm(reset.topic, reset.position);
        this.events.reset(reset);
        continue;
      }
      if (position) this.confirm(data.topic, position);
      this.events.message(toMessage(ev.event, data, position), position);
    }
    const positions = parseCursor(body.lastEventId, topics.length);
    if (!positions) return;
    const map = new Map<string, Position>();
    topics.forEach((t, i) => {
      if (!this.topics.has(t)) return;
      this.confirm(t, positions[i]!);
      map.set(t, positions[i]!);
    });
    this.events.checkpoint(map);
  }
}
