// The connection: one multiplexed stream (`/v1/stream?topic=…`) carrying every topic this
// client (or, as the cross-tab leader, every tab) follows, so a page never spends more
// than one of the browser's six connections per origin.
//
// The source runs the connection's loop and composes its parts, one job each:
// - topic-cursors.ts: the topic set and a cursor per topic (the position to resume from);
//   changing the set reopens the stream, resuming each topic exactly where it was
//   (`start`/`now` for a new topic);
// - sse-transport.ts and poll-transport.ts: one attempt each, a stream or a long-poll,
//   and the outcome that ended it;
// - fallback-policy.ts: which transport next, what state meanwhile, how long to wait
//   (back-off, the fallback to long-poll and the return to SSE, new keys after a 401).
// What stays here: the loop itself, a fresh key from `token()` before every attempt, the
// batching of topic-set changes, the connection's state, and turning what the transports
// receive into `SourceEvents` (confirming each position in the cursors on the way).
//
// It never deduplicates: the subscriptions downstream keep their own positions (see
// subscription.ts), which is what makes every switch — reconnect, fallback, hand-over to
// another tab — free of loss and duplicates.
import { Attempt, failure, type Outcome, type TransportSink } from './attempt.js';
import { Wakeup } from './backoff.js';
import { FallbackPolicy, type Phase } from './fallback-policy.js';
import { errorMessage, type FetchLike, type TokenSource } from './http.js';
import { PollTransport } from './poll-transport.js';
import type { Position, Start } from './position.js';
import { SseTransport } from './sse-transport.js';
import type { SourceTiming } from './timing.js';
import { TopicCursors } from './topic-cursors.js';
import type { ConnectionState, FanoutErrorInfo, FanoutMessage, ResetInfo } from './types.js';

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

export class Source {
  private readonly cursors = new TopicCursors();
  private readonly policy: FallbackPolicy;
  private readonly sse: SseTransport;
  private readonly poller: PollTransport;
  private readonly sink: TransportSink;
  private readonly wakeup = new Wakeup();
  /** Cut short only by close(), not by topic changes (the hand-over wait collects those). */
  private readonly startGate = new Wakeup();
  private current: Attempt | undefined;
  private closed = false;
  private stateValue: ConnectionState = 'idle';
  private changeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly options: SourceOptions,
    private readonly events: SourceEvents,
  ) {
    const { url, fetch, timing } = options;
    this.policy = new FallbackPolicy({ transport: options.transport, timing });
    this.sse = new SseTransport({ url, fetch, readyTimeoutMs: timing.readyTimeoutMs, idleTimeoutMs: timing.idleTimeoutMs });
    this.poller = new PollTransport({ url, fetch });
    this.sink = this.transportSink();
    void this.run(options.startDelayMs ?? 0);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  get transport(): 'sse' | 'poll' {
    return this.policy.transport;
  }

  /** This source's counters, each kept by the part that does what it counts. */
  get stats(): SourceStats {
    return { connects: this.sse.connects, opens: this.sse.opens, polls: this.poller.polls, fallbacks: this.policy.fallbacks, restores: this.policy.restores };
  }

  /** The topics followed and where each resumes. */
  cursor(): ReadonlyMap<string, Start> {
    return this.cursors.starts();
  }

  /** The positions the server has confirmed: everything up to each has been delivered (a checkpoint). */
  confirmedPositions(): Map<string, Position> {
    return this.cursors.confirmedPositions();
  }

  /** Replaces the topic set (see TopicCursors.replace); a change reopens the connection once per batch. */
  setTopics(wanted: ReadonlyMap<string, Start>): void {
    if (this.closed) return;
    if (this.cursors.replace(wanted)) this.scheduleChange();
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

  private async run(startDelayMs: number): Promise<void> {
    if (startDelayMs > 0) await this.startGate.wait(startDelayMs);
    while (!this.closed) {
      if (this.cursors.size === 0) {
        this.setState('idle');
        await this.wakeup.wait();
        continue;
      }
      const phase = this.policy.phase(Date.now());
      let outcome: Outcome;
      try {
        outcome = await this.attempt(phase);
      } catch (err) {
        // A bug or an unexpected runtime error: report it and keep the connection alive.
        outcome = { kind: 'failed', error: failure('client_error', errorMessage(err)), opened: false };
      }
      await this.settle(outcome, phase);
    }
  }

  /** One attempt of the phase's transport, with a fresh key, over the current topic set. */
  private async attempt(phase: Phase): Promise<Outcome> {
    const state = this.policy.attemptState(phase);
    if (state) this.setState(state);
    const { topics, starts } = this.cursors.snapshot();
    const attempt = new Attempt();
    this.current = attempt;
    try {
      let token: string;
      try {
        token = await this.options.token();
      } catch (err) {
        return { kind: 'failed', error: failure('token_error', `getToken() failed: ${errorMessage(err)}`), opened: false };
      }
      // Closed, or the topic set changed, while the key was on its way.
      if (attempt.outcome) return attempt.outcome;
      const request = { topics, starts, token };
      if (phase === 'poll') return await this.poller.poll({ ...request, waitS: this.policy.pollWaitS(Date.now()) }, attempt, this.sink);
      return await this.sse.stream(request, attempt, this.sink);
    } finally {
      if (this.current === attempt) this.current = undefined;
    }
  }

  /** What to do after an attempt ends: the topics it ended, the error it reports, then the policy's state and wait. */
  private async settle(outcome: Outcome, phase: Phase): Promise<void> {
    switch (outcome.kind) {
      case 'ended':
        for (const topic of outcome.topics) {
          if (this.cursors.delete(topic)) this.events.ended(topic);
        }
        break;
      case 'refused':
        if (this.cursors.delete(outcome.topic)) this.events.refused(outcome.topic, outcome.error);
        break;
      case 'auth':
      case 'failed':
        this.events.error(outcome.error);
        break;
    }
    const step = this.policy.next(outcome, phase, Date.now());
    if (step.state) this.setState(step.state);
    if (step.waitMs !== undefined) await this.wakeup.wait(step.waitMs);
  }

  /** How what the transports receive reaches the cursors and the listener. */
  private transportSink(): TransportSink {
    const { cursors, events } = this;
    return {
      follows: (topic) => cursors.has(topic),
      opened: (topics, positions) => {
        const checkpoint = cursors.confirmAll(topics, positions);
        this.policy.streamOpened();
        this.setState('open');
        events.checkpoint(checkpoint);
      },
      checkpoint: (topics, positions) => events.checkpoint(cursors.confirmAll(topics, positions)),
      message: (message, position) => {
        if (!cursors.has(message.topic)) return;
        if (position) cursors.confirm(message.topic, position);
        events.message(message, position);
      },
      reset: (info) => {
        if (!cursors.has(info.topic)) return;
        cursors.confirm(info.topic, info.position);
        events.reset(info);
      },
    };
  }
}
