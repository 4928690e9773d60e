// The degradation search on synthetic systems whose breaking point is known.
import { describe, expect, it } from 'vitest';
import { searchDegradation, type StepOutcome } from '../../src/spike/degradation.js';

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
});
