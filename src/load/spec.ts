// What one load run is: the target, the shape of the load (connections, pattern,
// duration, message rates) for the SSE side, the Realtime side or both at once, the
// thresholds that judge it, and the generator's own health limits.
import type { ConnectionPattern } from './schedule.js';
import type { SsePathMode, Target } from './target.js';
import type { Threshold } from './thresholds.js';

export interface SseLoad {
  connections: number;
  /** Distinct progress streams (content items); connections are spread over them. */
  streams: number;
  /** Messages per second published to each stream (0 = do not publish; measure what the server sends). */
  ratePerStream: number;
  path: SsePathMode;
  reconnect: boolean;
}

export interface RealtimeLoad {
  projects: number;
  usersPerProject: number;
  presence: boolean;
  /** ms between presence updates per user (Supabase allows 5 presence calls per 30 s per channel). */
  presenceIntervalMs: number;
  /** Document broadcasts per second per project (sent by the project's first user); 0 = none. */
  docRate: number;
  /** Comment inserts per second per project, delivered as postgres_changes; 0 = none. */
  commentRate: number;
  reconnect: boolean;
  /** raw Phoenix v2 over ws (default), or one real supabase-js client per user. */
  client?: 'raw' | 'supabase-js';
}

export interface GeneratorLimits {
  /** The run is invalid when the generator's event-loop lag p99 in steady state exceeds this (10% of the seed's 500 ms delivery budget). */
  maxLagMs: number;
  /**
   * ... or its lag p99 while connections open exceeds this. That phase measures connect,
   * subscribe and early presence times, whose tightest criterion is 1 s: 10% of it by
   * default (and never less than maxLagMs).
   */
  maxConnectingLagMs?: number;
  /** ... or when any generator process averages more CPU than this (% of one core). */
  maxCpuPct: number;
}

export interface FaultStep {
  /** ms after the start. */
  atMs: number;
  label: string;
  run(): Promise<void>;
}

export interface RunSpec {
  name: string;
  target: Target;
  durationMs: number;
  /** Time over which connections arrive (gradual/sustained). */
  rampMs: number;
  pattern: ConnectionPattern;
  sse?: SseLoad;
  realtime?: RealtimeLoad;
  /** Generator processes; default: enough for ≤ 18,000 sockets each, at least 2. */
  workers?: number;
  thresholds: Threshold[];
  generator: GeneratorLimits;
  /** Faults to inject during the run (loopback targets only). */
  faults?: FaultStep[];
  /** Extra seconds after publishing stops for in-flight messages to arrive. */
  drainMs?: number;
  /** Connect timeout (the seed's EventSource wrapper used 10 s). */
  connectTimeoutMs?: number;
  /** Stop the run as soon as a latency threshold fails on the merged live data (after the ramp). */
  abortOnFail?: boolean;
  /**
   * Open at most this many connections per second across the generator: a ramp that would
   * open them faster is lengthened (and the run by as much, so its steady part keeps its length).
   */
  maxOpenRate?: number;
}

/** The spec with its ramp lengthened to respect `maxOpenRate`, and a note saying so (none when it already did). */
export function paced(spec: RunSpec): { spec: RunSpec; note?: string } {
  const sockets = (spec.sse?.connections ?? 0) + (spec.realtime ? spec.realtime.projects * spec.realtime.usersPerProject : 0);
  if (!spec.maxOpenRate || spec.maxOpenRate <= 0 || sockets <= 1 || spec.pattern === 'burst') return { spec };
  const needMs = Math.ceil((sockets / spec.maxOpenRate) * 1000);
  if (needMs <= spec.rampMs) return { spec };
  const extra = needMs - spec.rampMs;
  return {
    spec: { ...spec, rampMs: needMs, durationMs: spec.durationMs + extra },
    note: `connections paced at ${spec.maxOpenRate}/s: the ramp took ${needMs / 1000} s instead of ${spec.rampMs / 1000} s, and the run ${(spec.durationMs + extra) / 1000} s`,
  };
}

export const DEFAULT_GENERATOR_LIMITS: GeneratorLimits = { maxLagMs: 50, maxConnectingLagMs: 100, maxCpuPct: 90 };

/** The connecting-phase lag limit of a set of limits. */
export function connectingLagLimit(g: GeneratorLimits): number {
  return Math.max(g.maxLagMs, g.maxConnectingLagMs ?? DEFAULT_GENERATOR_LIMITS.maxConnectingLagMs!);
}
