// The client's fallback policy on its own (src/client/fallback-policy.ts): which transport
// the next attempt uses, what state the app sees and how long to wait, driven outcome by
// outcome with a fixed clock and jitter. The same rules are exercised end to end against
// a real gateway behind a buffering proxy in fallback.test.ts and client.test.ts.
import { describe, expect, it } from 'vitest';
import type { Outcome } from '../../src/client/attempt.js';
import { FallbackPolicy } from '../../src/client/fallback-policy.js';

const TIMING = { backoffInitialMs: 100, backoffMaxMs: 1000, sseFailuresBeforePolling: 2, sseRetryMs: 30_000, sseRetryMaxMs: 100_000, pollWaitS: 25 };
const failed = (opened = false, retryAfterMs?: number): Outcome => ({ kind: 'failed', error: { code: 'network', message: 'x', fatal: false }, opened, retryAfterMs });
const auth: Outcome = { kind: 'auth', error: { code: 'token_expired', message: 'x', fatal: false } };

/** Jitter 0: each back-off step is exactly half its ceiling (100 → 50, 100, 200, …). */
function policy(transport: 'auto' | 'sse' | 'poll' = 'auto'): FallbackPolicy {
  return new FallbackPolicy({ transport, timing: TIMING, random: () => 0 });
}

describe('FallbackPolicy', () => {
  it('falls back to long-poll after SSE fails before ready the configured number of times in a row', () => {
    const p = policy();
    expect(p.phase(0)).toBe('stream');
    expect(p.attemptState('stream')).toBe('connecting');
    expect(p.next(failed(), 'stream', 0)).toEqual({ state: 'connecting', waitMs: 50 });
    expect(p.transport).toBe('sse');
    // The second failure in a row switches at once: no wait before the first poll.
    expect(p.next(failed(), 'stream', 1000)).toEqual({});
    expect(p.transport).toBe('poll');
    expect(p.fallbacks).toBe(1);
    expect(p.phase(1000)).toBe('poll');
    expect(p.attemptState('poll')).toBe('polling');
  });

  it('probes SSE every sseRetryMs while polling, doubling after each failed probe up to the max, and never polls past a probe', () => {
    const p = policy();
    p.next(failed(), 'stream', 0);
    p.next(failed(), 'stream', 0); // polling; first probe at 30 s
    expect(p.pollWaitS(0)).toBe(25);
    expect(p.pollWaitS(20_000)).toBe(10);
    expect(p.pollWaitS(29_500)).toBe(0);
    expect(p.phase(29_999)).toBe('poll');
    expect(p.phase(30_000)).toBe('probe');
    // A probe keeps the app's state (it still sees `polling`) and its failure waits for nothing.
    expect(p.attemptState('probe')).toBeUndefined();
    expect(p.next(failed(), 'probe', 30_000)).toEqual({});
    expect(p.phase(30_000 + 59_999)).toBe('poll');
    expect(p.phase(30_000 + 60_000)).toBe('probe');
    p.next(failed(), 'probe', 90_000); // 120 s would pass the max: 100 s
    expect(p.phase(90_000 + 99_999)).toBe('poll');
    expect(p.phase(90_000 + 100_000)).toBe('probe');
    expect(p.transport).toBe('poll');
  });

  it('returns to SSE when a probe reaches ready, and starts the probe schedule over after the next fallback', () => {
    const p = policy();
    p.next(failed(), 'stream', 0);
    p.next(failed(), 'stream', 0);
    p.next(failed(), 'probe', 30_000); // next probe at 90 s
    p.streamOpened();
    expect(p.transport).toBe('sse');
    expect(p.restores).toBe(1);
    expect(p.phase(0)).toBe('stream');
    expect(p.attemptState('stream')).toBe('reconnecting');
    // The failure count started over too: one failure does not fall back again.
    expect(p.next(failed(), 'stream', 100_000)).toEqual({ state: 'reconnecting', waitMs: 50 });
    expect(p.next(failed(), 'stream', 100_000)).toEqual({});
    expect(p.fallbacks).toBe(2);
    expect(p.phase(100_000 + 29_999)).toBe('poll');
    expect(p.phase(100_000 + 30_000)).toBe('probe');
  });

  it('treats a probe that reached ready and later dropped as a live stream that dropped, not as a failed probe', () => {
    const p = policy();
    p.next(failed(), 'stream', 0);
    p.next(failed(), 'stream', 0);
    expect(p.phase(30_000)).toBe('probe');
    p.streamOpened(); // the probe reached ready: SSE is the transport again
    // The same attempt (begun as a probe) drops later: the app sees `reconnecting` and SSE comes back after a short back-off.
    expect(p.next(failed(true), 'probe', 200_000)).toEqual({ state: 'reconnecting', waitMs: 50 });
    expect(p.transport).toBe('sse');
    expect(p.phase(200_050)).toBe('stream');
    // A gateway drain of that stream also shows as reconnecting.
    expect(p.next({ kind: 'shutdown', retryMs: 1000 }, 'probe', 200_100)).toEqual({ state: 'reconnecting', waitMs: 1000 });
  });

  it('backs off exponentially, never under Retry-After, and comes back quickly after a live stream drops', () => {
    const p = policy('sse');
    expect([1, 2, 3, 4, 5].map(() => p.next(failed(), 'stream', 0).waitMs)).toEqual([50, 100, 200, 400, 500]);
    expect(p.transport).toBe('sse'); // `sse` never falls back
    expect(p.next(failed(false, 5000), 'stream', 0).waitMs).toBe(5000);
    // A stream that had reached ready: back-off starts over.
    expect(p.next(failed(true), 'stream', 0)).toEqual({ state: 'reconnecting', waitMs: 50 });
  });

  it('retries a 401 at once with a new key, and backs off only when the next key fails too', () => {
    const p = policy();
    expect(p.next(auth, 'stream', 0)).toEqual({});
    expect(p.next(auth, 'stream', 0)).toEqual({ waitMs: 50 });
    expect(p.next(auth, 'stream', 0)).toEqual({ waitMs: 100 });
    p.streamOpened();
    expect(p.next(auth, 'stream', 0)).toEqual({});
    // A poll that answers counts as success too.
    p.next(auth, 'poll', 0);
    p.next({ kind: 'polled' }, 'poll', 0);
    expect(p.next(auth, 'poll', 0)).toEqual({});
  });

  it("waits out the gateway's shutdown retry without back-off", () => {
    const p = policy('sse');
    p.next(failed(), 'stream', 0);
    expect(p.next({ kind: 'shutdown', retryMs: 700 }, 'stream', 0)).toEqual({ state: 'reconnecting', waitMs: 700 });
    expect(p.next(failed(), 'stream', 0).waitMs).toBe(50); // the shutdown reset the back-off
  });

  it('with transport "poll", polls throughout and never probes SSE', () => {
    const p = policy('poll');
    expect(p.transport).toBe('poll');
    expect(p.phase(Number.MAX_SAFE_INTEGER)).toBe('poll');
    expect(p.pollWaitS(0)).toBe(25);
    expect(p.next(failed(), 'poll', 0)).toEqual({ waitMs: 50 });
    expect(p.fallbacks).toBe(0);
  });
});
