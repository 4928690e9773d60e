// The seed's scenario matrix (spike-003 "Test Scenarios" and "Integration Tests") in
// three sizes: `default` (about 20–25 minutes on 2 cores), `quick` (about 3 minutes) and
// `ci` (the smallest run that still exercises every scenario, for the end-to-end test).
// Durations shrink with the profile; the scenarios and their shapes do not.
import type { RealtimeLoad, SseLoad } from '../load/spec.js';
import type { ScenarioCategory } from './model.js';

export type Profile = 'ci' | 'quick' | 'default';

export interface ScenarioDef {
  id: string;
  title: string;
  category: ScenarioCategory;
  seedItem: string;
  durationMs: number;
  rampMs: number;
  sse?: SseLoad;
  realtime?: RealtimeLoad;
  /** For the fault scenario: the id of the solo run its surviving side is compared with. */
  soloId?: string;
  /** A repetition of this baseline scenario (for run-to-run noise). */
  repeatOf?: string;
}

export interface RampDef {
  start: number;
  factor: number;
  max: number;
  /** Bisection steps between the last passing and the first failing load (kept in the step budget). */
  refine: number;
  maxSteps: number;
  /**
   * Connections opened per second in every step, whatever its size: a step's ramp lasts
   * load / openRate, so the ramp varies one thing — how many connections are held — and
   * neither the gateway nor the generator meets a burst that the next step would not.
   */
  openRate: number;
  /**
   * How long each step holds its full load after the ramp: at least 3 s, so at least one
   * whole second falls after the ramp's one-second settling (the steady state the
   * generator's per-message cost, bandwidth and steady latency are read from).
   */
  holdMs: number;
}

/** A ramp step's timing: the paced ramp, then the hold. */
export function rampStepTiming(ramp: RampDef, load: number): { rampMs: number; durationMs: number } {
  const rampMs = Math.max(500, Math.ceil((load / ramp.openRate) * 1000));
  return { rampMs, durationMs: rampMs + ramp.holdMs };
}

export interface ProfileDef {
  matrixMs: number;
  matrixRampMs: number;
  hybridMs: number;
  faultMs: number;
  /** Presence interval: Supabase allows 5 presence calls per channel per 30 s, so ≥ 7 s. */
  presenceIntervalMs: number;
  baselineMs: number;
  drainMs: number;
  rampSse: RampDef;
  rampRealtime: RampDef;
  /** Measure an INVALID ramp step once more before ending the search (costs time only when a step is INVALID). */
  retryInvalidSteps: boolean;
  /** Runs of each noise baseline (NOISE_BASELINES): ≥ 2 measures the run-to-run spread the comparison rules need. */
  repeats: number;
}

/**
 * The scenarios whose figures the comparison rules hold others against (hybrid and the
 * failure run against sse-100 and rt-10x10; channel size: rt-20x5 against rt-presence-100):
 * each is run `repeats` times so its run-to-run spread is known.
 */
export const NOISE_BASELINES = ['sse-100', 'rt-10x10', 'rt-20x5', 'rt-presence-100'] as const;

export const PROFILES: Record<Profile, ProfileDef> = {
  default: {
    matrixMs: 30_000,
    matrixRampMs: 5000,
    hybridMs: 45_000,
    faultMs: 60_000,
    presenceIntervalMs: 10_000,
    baselineMs: 2000,
    drainMs: 1500,
    rampSse: { start: 250, factor: 2, max: 19_000, refine: 2, maxSteps: 11, openRate: 2000, holdMs: 10_000 },
    rampRealtime: { start: 100, factor: 2, max: 12_800, refine: 2, maxSteps: 10, openRate: 600, holdMs: 10_000 },
    retryInvalidSteps: true,
    repeats: 3,
  },
  quick: {
    matrixMs: 3000,
    matrixRampMs: 500,
    hybridMs: 4500,
    faultMs: 8000,
    presenceIntervalMs: 7000,
    baselineMs: 300,
    drainMs: 500,
    rampSse: { start: 250, factor: 4, max: 4000, refine: 2, maxSteps: 5, openRate: 800, holdMs: 3500 },
    rampRealtime: { start: 100, factor: 4, max: 1600, refine: 2, maxSteps: 5, openRate: 250, holdMs: 3500 },
    retryInvalidSteps: true,
    repeats: 2,
  },
  ci: {
    matrixMs: 2000,
    matrixRampMs: 300,
    hybridMs: 3000,
    faultMs: 6000,
    presenceIntervalMs: 7000,
    baselineMs: 400,
    drainMs: 500,
    rampSse: { start: 100, factor: 3, max: 900, refine: 1, maxSteps: 3, openRate: 600, holdMs: 3000 },
    rampRealtime: { start: 50, factor: 3, max: 450, refine: 1, maxSteps: 3, openRate: 250, holdMs: 3000 },
    retryInvalidSteps: false,
    repeats: 2,
  },
};

export const SSE_SCALES = [10, 25, 50, 100, 200] as const;

/** One stream per connection, as the seed's tester did (each connection is its own user, ?userId=test-user-i). */
export function sseLoad(connections: number, rate = 1): SseLoad {
  return { connections, streams: connections, ratePerStream: rate, path: 'user', reconnect: true };
}

export function realtimeLoad(p: ProfileDef, projects: number, usersPerProject: number, over: Partial<RealtimeLoad> = {}): RealtimeLoad {
  return { projects, usersPerProject, presence: true, presenceIntervalMs: p.presenceIntervalMs, docRate: 1, commentRate: 0.5, reconnect: true, ...over };
}

/** The matrix with each noise baseline repeated `repeats` times in a row (`sse-100#2`, …), so its run-to-run spread can be measured. */
export function matrixWithRepeats(profile: Profile, repeats = PROFILES[profile].repeats): ScenarioDef[] {
  const out: ScenarioDef[] = [];
  for (const d of matrix(profile)) {
    out.push(d);
    if ((NOISE_BASELINES as readonly string[]).includes(d.id)) for (let k = 2; k <= repeats; k++) out.push({ ...d, id: `${d.id}#${k}`, title: `${d.title} (run ${k} of ${repeats}, for run-to-run noise)`, repeatOf: d.id });
  }
  return out;
}

export function matrix(profile: Profile): ScenarioDef[] {
  const p = PROFILES[profile];
  const base = { durationMs: p.matrixMs, rampMs: p.matrixRampMs };
  const out: ScenarioDef[] = SSE_SCALES.map((n) => ({
    id: `sse-${n}`,
    title: `SSE, ${n} concurrent connections${n === 200 ? ' (stress test)' : ''}`,
    category: 'sse' as const,
    seedItem: `${n} concurrent SSE connections`,
    ...base,
    sse: sseLoad(n),
  }));
  const rt: [number, number, string][] = [
    [5, 10, '5 projects with 10 users each (50 total connections)'],
    [10, 10, '10 projects with 10 users each (100 total connections)'],
    [20, 5, '20 projects with 5 users each (100 total connections)'],
  ];
  for (const [projects, users, item] of rt) {
    out.push({ id: `rt-${projects}x${users}`, title: `Realtime, ${projects} projects × ${users} users`, category: 'realtime', seedItem: item, ...base, realtime: realtimeLoad(p, projects, users) });
  }
  out.push({
    id: 'rt-presence-100',
    title: 'Realtime presence, 100 active users in one channel',
    category: 'realtime',
    seedItem: 'Presence updates with 100 active users',
    ...base,
    realtime: realtimeLoad(p, 1, 100, { docRate: 0, commentRate: 0 }),
  });
  out.push({
    id: 'rt-comments-hf',
    title: 'Realtime comment updates at high frequency (5 inserts/s per project)',
    category: 'realtime',
    seedItem: 'Comment updates with high frequency',
    ...base,
    realtime: realtimeLoad(p, 5, 10, { docRate: 0, commentRate: 5 }),
  });
  out.push({
    id: 'hybrid',
    title: 'Hybrid: SSE 100 connections and Realtime 10 × 10 at once',
    category: 'hybrid',
    seedItem: 'SSE + Supabase Realtime simultaneous operation; resource usage with both systems active',
    durationMs: p.hybridMs,
    rampMs: p.matrixRampMs,
    sse: sseLoad(100),
    realtime: realtimeLoad(p, 10, 10),
  });
  out.push({
    id: 'fault-db',
    title: 'Hybrid with the database failing mid-run (stopped, then restarted)',
    category: 'fault',
    seedItem: 'Error handling when one system fails; graceful degradation',
    durationMs: p.faultMs,
    rampMs: p.matrixRampMs,
    sse: sseLoad(100),
    realtime: realtimeLoad(p, 10, 10),
    soloId: 'sse-100',
  });
  return out;
}

/** The soak: the seed's "connection stability > 99% over 10-minute test", with both systems active. */
export function soak(profile: Profile, seconds: number): ScenarioDef {
  const p = PROFILES[profile];
  return {
    id: `soak-${seconds}s`,
    title: `Soak: SSE 200 and Realtime 10 × 10 for ${seconds} s`,
    category: 'soak',
    seedItem: 'Connection stability > 99% over 10-minute test',
    durationMs: seconds * 1000,
    rampMs: Math.min(10_000, seconds * 100),
    sse: sseLoad(200),
    realtime: realtimeLoad(p, 10, 10),
  };
}

/** Ramp step loads: SSE spreads connections over 20 streams (one message/s each); Realtime uses channels of 10 users. */
export function rampSseLoad(connections: number): SseLoad {
  return { connections, streams: Math.min(20, connections), ratePerStream: 1, path: 'content', reconnect: true };
}

export function rampRealtimeLoad(p: ProfileDef, users: number): RealtimeLoad {
  const usersPerProject = 10;
  return realtimeLoad(p, Math.max(1, Math.round(users / usersPerProject)), usersPerProject, { commentRate: 0 });
}

/** The criteria a ramp step must meet (the seed's per-transport acceptance criteria; resource criteria are reported, not used to stop). */
export const RAMP_CRITERIA: Record<'sse' | 'realtime', string[]> = {
  sse: ['sse.connect_success_pct', 'sse.connect.p99', 'sse.latency_e2e.p99', 'sse.stability_pct'],
  realtime: ['realtime.connect_success_pct', 'realtime.subscribe.p99', 'realtime.presence.p99', 'realtime.reliability_pct', 'realtime.lost'],
};
