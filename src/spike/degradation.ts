// Finding a transport's degradation point on this machine: the first load at which an
// acceptance criterion fails. Loads grow geometrically from `start` until a step fails
// (or `max` is reached), then the interval between the last passing and the first
// failing load is bisected `refine` times — the step budget keeps room for that, so a
// degradation point is never named from one coarse jump. If the very first step fails,
// loads shrink instead, so the answer is never "below whatever we happened to start at".
// A step whose run was INVALID (the generator saturated, or the machine starved the
// gateway) ends the search: beyond it the figures would be the generator's, not the
// server's, and the last passing load is only a lower bound.

export type StepVerdict = 'pass' | 'fail' | 'invalid';

export interface StepOutcome {
  load: number;
  verdict: StepVerdict;
  /** Criteria that failed (or why the step is invalid). */
  failures: string[];
}

export interface SearchOptions {
  start: number;
  /** Growth factor per step (> 1). */
  factor: number;
  max: number;
  /** Smallest load worth trying when shrinking. */
  min?: number;
  /** Bisection steps between last pass and first fail. */
  refine: number;
  /** Stop refining when the interval is this narrow (in load units). */
  resolution?: number;
  /** Hard cap on evaluated steps (time budget). */
  maxSteps?: number;
}

export interface SearchResult<T extends StepOutcome> {
  steps: T[];
  /** Highest load that passed every criterion. */
  lastPass: number | null;
  /** Lowest load that failed one (the degradation point). */
  firstFail: number | null;
  /** Why the search stopped: found, reached the configured max without failing, generator limit, step budget. */
  stoppedBy: 'degradation-found' | 'max-reached' | 'generator-limit' | 'step-budget';
}

export async function searchDegradation<T extends StepOutcome>(evaluate: (load: number) => Promise<T>, opts: SearchOptions): Promise<SearchResult<T>> {
  if (!(opts.factor > 1)) throw new Error(`degradation search factor must be > 1, got ${opts.factor}`);
  const steps: T[] = [];
  const budget = opts.maxSteps ?? 20;
  const min = Math.max(1, opts.min ?? 1);
  let lastPass: number | null = null;
  let firstFail: number | null = null;
  const run = async (load: number): Promise<T> => {
    const o = await evaluate(load);
    steps.push(o);
    return o;
  };
  const done = (stoppedBy: SearchResult<T>['stoppedBy']): SearchResult<T> => ({ steps, lastPass, firstFail, stoppedBy });

  // Grow until something fails, keeping `refine` steps for the bisection.
  const growthBudget = Math.max(1, budget - Math.min(opts.refine, Math.floor(budget / 2)));
  let load = Math.min(Math.max(min, Math.round(opts.start)), opts.max);
  for (;;) {
    if (steps.length >= growthBudget) return done('step-budget');
    const o = await run(load);
    if (o.verdict === 'invalid') return done('generator-limit');
    if (o.verdict === 'fail') {
      firstFail = load;
      break;
    }
    lastPass = load;
    if (load >= opts.max) return done('max-reached');
    load = Math.min(opts.max, Math.max(load + 1, Math.round(load * opts.factor)));
  }

  // The first step failed: shrink until something passes.
  while (lastPass === null && firstFail > min) {
    if (steps.length >= growthBudget) return done('step-budget');
    const lower = Math.max(min, Math.floor(firstFail / opts.factor));
    const o = await run(lower);
    if (o.verdict === 'invalid') return done('generator-limit');
    if (o.verdict === 'pass') lastPass = lower;
    else firstFail = lower;
  }

  // Bisect between last pass and first fail.
  const resolution = Math.max(1, opts.resolution ?? 1);
  for (let i = 0; i < opts.refine && lastPass !== null && firstFail - lastPass > resolution; i++) {
    if (steps.length >= budget) return done('step-budget');
    const mid = Math.round((lastPass + firstFail) / 2);
    const o = await run(mid);
    if (o.verdict === 'invalid') return done('generator-limit');
    if (o.verdict === 'pass') lastPass = mid;
    else firstFail = mid;
  }
  return done('degradation-found');
}

/** What a search's outcome supports, said plainly. */
export function describeSearch(r: Pick<SearchResult<StepOutcome>, 'steps' | 'lastPass' | 'firstFail' | 'stoppedBy'>, unit: string, max: number): { strength: 'measured' | 'lower-bound' | 'not-measured'; finding: string } {
  const n = (v: number): string => v.toLocaleString('en-US');
  const invalid = r.steps.find((s) => s.verdict === 'invalid');
  if (r.lastPass === null) {
    if (r.firstFail !== null) return { strength: 'measured', finding: `degrades at or below ${n(r.firstFail)} ${unit}: even the smallest step tried failed` };
    return { strength: 'not-measured', finding: invalid ? `not measured: the first step (${n(invalid.load)} ${unit}) was INVALID — ${invalid.failures[0] ?? 'the generator could not keep up'}` : 'not measured: no step ran' };
  }
  if (r.firstFail !== null) {
    return { strength: 'measured', finding: `degrades between ${n(r.lastPass)} (passed) and ${n(r.firstFail)} ${unit} (failed)` };
  }
  if (r.stoppedBy === 'generator-limit' && invalid) return { strength: 'lower-bound', finding: `≥ ${n(r.lastPass)} ${unit}: the next step (${n(invalid.load)}) was INVALID — ${invalid.failures[0] ?? 'the generator could not keep up'} — so the gateway's limit was not reached` };
  if (r.stoppedBy === 'max-reached') return { strength: 'lower-bound', finding: `≥ ${n(r.lastPass)} ${unit}: every step up to the ramp's largest (${n(max)}) passed` };
  return { strength: 'lower-bound', finding: `≥ ${n(r.lastPass)} ${unit}: the ramp's step budget ran out before a step failed` };
}
