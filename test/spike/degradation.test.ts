// The degradation search on synthetic systems whose breaking point is known.
import { describe, expect, it } from 'vitest';
import { describeSearch, searchDegradation, type StepOutcome } from '../../src/spike/degradation.js';

/** A system that meets every criterion up to `limit` connections and fails above it. */
const system = (limit: number, invalidFrom = Infinity) => async (load: number): Promise<StepOutcome> => ({
  load,
  verdict: load >= invalidFrom ? 'invalid' : load <= limit ? 'pass' : 'fail',
  failures: load > limit ? [`sse.latency.p99 at ${load}`] : [],
});

describe('degradation search', () => {
  it('grows geometrically, then bisects to the breaking point', async () => {
    const r = await searchDegradation(system(3000), { start: 250, factor: 2, max: 20_000, refine: 4 });
    expect(r.steps.map((s) => s.load)).toEqual([250, 500, 1000, 2000, 4000, 3000, 3500, 3250, 3125]);
    expect(r.lastPass).toBe(3000);
    expect(r.firstFail).toBe(3125);
    expect(r.stoppedBy).toBe('degradation-found');
  });

  it('bisects down to the resolution', async () => {
    const r = await searchDegradation(system(777), { start: 100, factor: 2, max: 10_000, refine: 20, resolution: 1 });
    expect(r.lastPass).toBe(777);
    expect(r.firstFail).toBe(778);
  });

  it('reports reaching the maximum without degrading', async () => {
    const r = await searchDegradation(system(1e9), { start: 100, factor: 4, max: 5000, refine: 3 });
    expect(r.steps.map((s) => s.load)).toEqual([100, 400, 1600, 5000]);
    expect(r).toMatchObject({ lastPass: 5000, firstFail: null, stoppedBy: 'max-reached' });
  });

  it('shrinks when the first step already fails', async () => {
    const r = await searchDegradation(system(60), { start: 400, factor: 2, max: 10_000, refine: 2, min: 10 });
    expect(r.steps.map((s) => s.load)).toEqual([400, 200, 100, 50, 75, 63]);
    expect(r).toMatchObject({ lastPass: 50, firstFail: 63 });
    const none = await searchDegradation(system(0), { start: 40, factor: 2, max: 100, refine: 2, min: 10 });
    expect(none).toMatchObject({ lastPass: null, firstFail: 10 });
  });

  it('stops at the generator limit: beyond it the figures would be the generator’s', async () => {
    const r = await searchDegradation(system(100_000, 4000), { start: 1000, factor: 2, max: 50_000, refine: 3 });
    expect(r.steps.map((s) => s.verdict)).toEqual(['pass', 'pass', 'invalid']);
    expect(r).toMatchObject({ lastPass: 2000, firstFail: null, stoppedBy: 'generator-limit' });
  });

  it('respects the step budget', async () => {
    const r = await searchDegradation(system(1e9), { start: 1, factor: 2, max: 1e9, refine: 0, maxSteps: 3 });
    expect(r.steps).toHaveLength(3);
    expect(r.stoppedBy).toBe('step-budget');
  });

  it('keeps steps for the bisection: a degradation point is never named from one coarse jump', async () => {
    // The recorded quick run jumped 400 → 1,600 and named 1,600; with bisection reserved it brackets the limit.
    const r = await searchDegradation(system(1000), { start: 100, factor: 4, max: 1600, refine: 2, maxSteps: 5 });
    expect(r.steps.map((s) => s.load)).toEqual([100, 400, 1600, 1000, 1300]);
    expect(r).toMatchObject({ lastPass: 1000, firstFail: 1300 });
    // A budget too small to bisect stops growing instead: the result is a lower bound, not a point.
    const tight = await searchDegradation(system(10_000), { start: 100, factor: 2, max: 1e6, refine: 2, maxSteps: 4 });
    expect(tight.steps.map((s) => s.load)).toEqual([100, 200]);
    expect(tight.stoppedBy).toBe('step-budget');
  });
});

describe('what a search supports', () => {
  it('a step above the last pass that was INVALID makes the last pass a lower bound, named with the reason', async () => {
    const r = await searchDegradation(async (load) => ({ load, verdict: load >= 1000 ? 'invalid' : 'pass', failures: load >= 1000 ? ['generator event-loop lag p99 128 ms while connections opened exceeds 100 ms'] : [] }), { start: 250, factor: 4, max: 4000, refine: 2, maxSteps: 5 });
    const d = describeSearch(r, 'connections', 4000);
    expect(d.strength).toBe('lower-bound');
    expect(d.finding).toBe('≥ 250 connections: the next step (1,000) was INVALID — generator event-loop lag p99 128 ms while connections opened exceeds 100 ms — so the gateway\'s limit was not reached');
  });

  it("a pass below a valid fail is a measured bracket; the ramp's maximum passing is a lower bound", async () => {
    const bracketed = describeSearch(await searchDegradation(system(3000), { start: 250, factor: 2, max: 20_000, refine: 4 }), 'connections', 20_000);
    expect(bracketed).toEqual({ strength: 'measured', finding: 'degrades between 3,000 (passed) and 3,125 connections (failed)' });
    const ceiling = describeSearch(await searchDegradation(system(1e9), { start: 100, factor: 4, max: 5000, refine: 3 }), 'users', 5000);
    expect(ceiling).toEqual({ strength: 'lower-bound', finding: "≥ 5,000 users: every step up to the ramp's largest (5,000) passed" });
    const nothing = describeSearch(await searchDegradation(system(1e9, 10), { start: 100, factor: 4, max: 5000, refine: 3 }), 'users', 5000);
    expect(nothing.strength).toBe('not-measured');
  });
});
