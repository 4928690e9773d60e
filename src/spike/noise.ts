// Run-to-run noise, and comparisons that respect it. A rule that compares two figures
// (interference between SSE and Realtime, a database outage's effect, channel size against
// presence latency) fires only when the difference is both MATERIAL (beyond the rule's
// budget) and beyond the NOISE of that figure — its spread over repeated runs of the same
// scenario. Where the spread is unknown (one run) or swallows the difference, the rule says
// it cannot tell instead of guessing.
import type { RunResult } from '../load/result.js';
import type { ScenarioRecord, Spread } from './model.js';

/** Latency stamps have millisecond resolution: no difference smaller than this is meaningful. */
export const RESOLUTION_MS = 1;

const round = (v: number, d = 3): number => Math.round(v * 10 ** d) / 10 ** d;

export function median(values: readonly number[]): number | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A figure over every valid run of a scenario (its repeats included). */
export function spreadOf(scenario: string, figure: string, values: readonly number[]): Spread {
  return {
    scenario,
    figure,
    values: [...values],
    median: values.length ? round(median(values)!) : null,
    spread: values.length >= 2 ? round(Math.max(...values) - Math.min(...values)) : null,
  };
}

/** The valid runs of scenario `id` and of its repeats. */
export function runsOf(scenarios: readonly ScenarioRecord[], id: string): ScenarioRecord[] {
  return scenarios.filter((s) => s.result.valid && (s.id === id || s.repeatOf === id));
}

/** `figure` of every valid run of scenario `id`, as a spread. */
export function measureSpread(scenarios: readonly ScenarioRecord[], id: string, figure: string, read: (r: RunResult) => number | null | undefined): Spread {
  const values = runsOf(scenarios, id)
    .map((s) => read(s.result))
    .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return spreadOf(id, figure, values);
}

export type ComparisonVerdict = 'worse' | 'not worse' | 'cannot tell';

export interface Comparison {
  verdict: ComparisonVerdict;
  /** The difference, the noise it was judged against, and the budget, in words. */
  why: string;
}

/**
 * Is `observed` worse than the baseline? Only when it exceeds the budget drawn around the
 * baseline's median (material) AND exceeds the median by more than the run-to-run spread
 * (of the baseline, and of the observed side when it was repeated too).
 */
export function compareToBaseline(baseline: Spread, observed: Spread | number | null, budget: (solo: number) => number, unit = 'ms'): Comparison {
  const obs = typeof observed === 'number' || observed === null ? observed : observed.median;
  const obsSpread = typeof observed === 'object' && observed !== null ? observed.spread : null;
  if (baseline.median === null || obs === null) return { verdict: 'cannot tell', why: `no valid ${baseline.median === null ? `${baseline.scenario} run` : 'run'} to compare` };
  const diff = round(obs - baseline.median);
  const limit = round(budget(baseline.median));
  const fmt = (v: number): string => `${round(v, 2)} ${unit}`;
  if (obs <= limit) return { verdict: 'not worse', why: `${fmt(obs)} against ${fmt(baseline.median)} in ${baseline.scenario}: within the budget (${fmt(limit)})` };
  if (baseline.spread === null) return { verdict: 'cannot tell', why: `${fmt(obs)} against ${fmt(baseline.median)} in ${baseline.scenario} is over the budget (${fmt(limit)}), but ${baseline.scenario} ran once, so its run-to-run noise is unknown` };
  const noise = Math.max(baseline.spread, obsSpread ?? 0, RESOLUTION_MS);
  if (diff <= noise) return { verdict: 'cannot tell', why: `${fmt(obs)} against ${fmt(baseline.median)} in ${baseline.scenario}: over the budget (${fmt(limit)}), but the difference (${fmt(diff)}) is within the run-to-run spread (${fmt(noise)} over ${baseline.values.length} runs)` };
  return { verdict: 'worse', why: `${fmt(obs)} against ${fmt(baseline.median)} in ${baseline.scenario}: over the budget (${fmt(limit)}) and beyond the run-to-run spread (${fmt(noise)} over ${baseline.values.length} runs)` };
}

/** Whether a difference between two spreads is beyond both of their noise (null: unknown). */
export function beyondNoise(a: Spread, b: Spread): boolean | null {
  if (a.median === null || b.median === null) return null;
  if (a.spread === null && b.spread === null) return null;
  return Math.abs(b.median - a.median) > Math.max(a.spread ?? 0, b.spread ?? 0, RESOLUTION_MS);
}
