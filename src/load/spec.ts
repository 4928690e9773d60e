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
  /** The run is invalid when the generator's event-loop lag p99 exceeds this. */
  maxLagMs: number;
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
}

export const DEFAULT_GENERATOR_LIMITS: GeneratorLimits = { maxLagMs: 50, maxCpuPct: 90 };
