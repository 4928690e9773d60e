// The connection's timeouts and retry delays, in one place: the app tunes them through
// `FanoutClientOptions.timing`, and each part of the connection reads only its own —
// the SSE transport its ready and idle bounds, the long-poll transport its wait, the
// fallback policy its back-off and SSE retry schedule, the source its topic-change batch.

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
