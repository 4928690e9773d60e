// The fallback policy: which transport the next attempt uses, what state the app sees
// meanwhile, and how long to wait before it. It holds every piece of the connection's
// retry state and nothing else — no topic, no request, no timer — so each rule can be
// read (and tested) on its own:
//
// - SSE first (or only, with `transport: 'sse'`; `poll` forces long-poll throughout).
//   `sseFailuresBeforePolling` SSE attempts in a row that fail before reaching `ready`
//   switch to long-poll (with `auto`); a stream that had reached `ready` and dropped
//   is not such a failure — it comes back quickly, jittered.
// - While polling, every `sseRetryMs` (doubling after each failed try, up to
//   `sseRetryMaxMs`) one attempt is an SSE probe instead of a poll; a poll never waits
//   past the probe's time. A probe that reaches `ready` makes SSE the transport again.
// - Failures wait a jittered exponential back-off, but never less than the server's
//   `Retry-After`; a stream reaching `ready`, or a poll answering, resets it. The
//   gateway's `shutdown` waits its own (already jittered) `retry:` instead.
// - A 401 or `token_expired` retries at once with a new key; only a second one in a row
//   backs off (a key source that keeps failing).
import { Backoff } from './backoff.js';
import type { Outcome } from './attempt.js';
import type { SourceTiming } from './timing.js';
import type { ConnectionState } from './types.js';

/** The kind of the next attempt: a stream, a long-poll, or (while polling) one stream tried instead. */
export type Phase = 'stream' | 'poll' | 'probe';

/** What to do after an attempt: show a state (if any), then wait (if any) before the next one. */
export interface Step {
  readonly state?: ConnectionState;
  readonly waitMs?: number;
}

export type FallbackTiming = Pick<SourceTiming, 'backoffInitialMs' | 'backoffMaxMs' | 'sseFailuresBeforePolling' | 'sseRetryMs' | 'sseRetryMaxMs' | 'pollWaitS'>;

export interface FallbackPolicyOptions {
  /** `auto`: SSE, falling back to long-poll; `sse` or `poll` to force one. */
  transport: 'auto' | 'sse' | 'poll';
  timing: FallbackTiming;
  /** Random source in [0, 1) for the back-off's jitter; injectable for tests. */
  random?: () => number;
}

export class FallbackPolicy {
  private readonly backoff: Backoff;
  private mode: 'sse' | 'poll';
  /** While polling: when (ms since the epoch) to try SSE again, and the delay that set it. */
  private probeAt = Infinity;
  private probeDelay: number;
  /** SSE attempts in a row that failed before `ready`. */
  private sseFailures = 0;
  /** Auth failures in a row. */
  private authFailures = 0;
  private everOpened = false;
  private fallbackCount = 0;
  private restoreCount = 0;

  constructor(private readonly options: FallbackPolicyOptions) {
    const t = options.timing;
    this.backoff = new Backoff({ initialMs: t.backoffInitialMs, maxMs: t.backoffMaxMs, random: options.random });
    this.probeDelay = t.sseRetryMs;
    this.mode = options.transport === 'poll' ? 'poll' : 'sse';
  }

  /** The transport in use: `poll` from a fallback (or forced) until a stream reaches `ready`. */
  get transport(): 'sse' | 'poll' {
    return this.mode;
  }

  /** Times SSE gave way to long-poll. */
  get fallbacks(): number {
    return this.fallbackCount;
  }

  /** Times a probe brought SSE back. */
  get restores(): number {
    return this.restoreCount;
  }

  /** The kind of the next attempt. */
  phase(now: number): Phase {
    if (this.mode === 'sse') return 'stream';
    return now < this.probeAt ? 'poll' : 'probe';
  }

  /** The state to show while an attempt of this phase runs; a probe shows none (the app keeps seeing `polling`). */
  attemptState(phase: Phase): ConnectionState | undefined {
    if (phase === 'poll') return 'polling';
    if (phase === 'probe') return undefined;
    return this.everOpened ? 'reconnecting' : 'connecting';
  }

  /** How long a poll may wait (seconds): its configured wait, but never past the next SSE probe. */
  pollWaitS(now: number): number {
    const untilProbe = Math.floor((this.probeAt - now) / 1000);
    return Math.max(0, Math.min(this.options.timing.pollWaitS, untilProbe));
  }

  /** A stream reached `ready`: it is the transport now, and every failure count starts over. */
  streamOpened(): void {
    this.everOpened = true;
    this.sseFailures = 0;
    this.authFailures = 0;
    this.backoff.reset();
    if (this.mode === 'poll') {
      this.mode = 'sse';
      this.restoreCount++;
      this.probeDelay = this.options.timing.sseRetryMs;
      this.probeAt = Infinity;
    }
  }

  /** What to do after an attempt of `phase` ended with `outcome`. */
  next(outcome: Outcome, phase: Phase, now: number): Step {
    switch (outcome.kind) {
      case 'changed':
      case 'closed':
      case 'ended':
      case 'refused':
        return {};
      case 'polled':
        this.authFailures = 0;
        this.backoff.reset();
        return {};
      case 'shutdown':
        this.backoff.reset();
        // While polling, a probe stream that the gateway drains before `ready` changes nothing the app sees.
        return this.mode === 'sse' ? { state: 'reconnecting', waitMs: outcome.retryMs } : { waitMs: outcome.retryMs };
      case 'auth':
        return ++this.authFailures > 1 ? { waitMs: this.backoff.next() } : {};
      case 'failed':
        return this.afterFailure(outcome.opened, outcome.retryAfterMs ?? 0, phase, now);
    }
  }

  private afterFailure(opened: boolean, floorMs: number, phase: Phase, now: number): Step {
    if (phase === 'poll') return { waitMs: Math.max(floorMs, this.backoff.next()) };
    // A probe that reached `ready` made SSE the transport again: its drop is a live stream's (below).
    if (phase === 'probe' && this.mode === 'poll') {
      // Still blocked or buffered: keep polling, and try SSE again later than last time.
      this.probeDelay = Math.min(this.probeDelay * 2, this.options.timing.sseRetryMaxMs);
      this.probeAt = now + this.probeDelay;
      return {};
    }
    if (opened) {
      // A live stream dropped (network blip, proxy timeout): come back quickly, jittered.
      this.backoff.reset();
      return { state: 'reconnecting', waitMs: Math.max(floorMs, this.backoff.next()) };
    }
    this.sseFailures++;
    if (this.options.transport === 'auto' && this.sseFailures >= this.options.timing.sseFailuresBeforePolling) {
      // Poll at once; the first SSE probe comes `sseRetryMs` later.
      this.mode = 'poll';
      this.fallbackCount++;
      this.probeDelay = this.options.timing.sseRetryMs;
      this.probeAt = now + this.probeDelay;
      this.backoff.reset();
      return {};
    }
    return { state: this.everOpened ? 'reconnecting' : 'connecting', waitMs: Math.max(floorMs, this.backoff.next()) };
  }
}
