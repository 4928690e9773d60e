// The limits a ramp supports, by strength, and the step verdicts behind them — on recorded
// ramp outcomes (the shapes of real quick runs: an INVALID step above the last pass, a
// bracketed failure, a ramp that only reached its largest step).
import { describe, expect, it } from 'vitest';
import { degradationFigures } from '../../src/spike/limits.js';
import { contention, verdictOf } from '../../src/spike/ramp.js';
import type { DegradationRecord } from '../../src/spike/model.js';
import type { RunResult } from '../../src/load/result.js';

const step = (load: number, verdict: 'pass' | 'fail' | 'invalid', failures: string[] = []) => ({ load, scenarioId: `ramp-sse-${load}`, verdict, failures, p99Ms: 5, connectP99Ms: 5 });
const ramp = (over: Partial<DegradationRecord>): DegradationRecord => ({
  transport: 'sse',
  unit: 'connections',
  criteria: ['sse.latency_e2e.p99'],
  steps: [],
  lastPass: null,
  firstFail: null,
  stoppedBy: 'degradation-found',
  max: 4000,
  strength: 'measured',
  finding: '',
  openRate: 800,
  holdMs: 3500,
  generator: null,
  ...over,
});

describe('limits by strength', () => {
  it('an INVALID step above the last pass: capacity and operating limit are lower bounds, no degradation point', () => {
    // The recorded quick run: 250 passed, 1,000 INVALID (generator lag while connecting).
    const d = ramp({ steps: [step(250, 'pass'), step(1000, 'invalid', ['generator event-loop lag p99 128 ms'])], lastPass: 250, stoppedBy: 'generator-limit', strength: 'lower-bound', finding: '≥ 250 connections: the next step (1,000) was INVALID — generator event-loop lag p99 128 ms' });
    const f = degradationFigures(d, 'connections');
    expect(f.point).toMatchObject({ value: null, strength: 'not-measured' });
    expect(f.point.basis).toMatch(/^not reached — ≥ 250 connections: the next step \(1,000\) was INVALID/);
    expect(f.capacity).toMatchObject({ value: 250, strength: 'lower-bound' });
    expect(f.capacity.bracket).toBeUndefined();
    expect(f.recommended).toMatchObject({ value: 175, strength: 'lower-bound' });
    expect(f.recommended.basis).toMatch(/a floor, not a cap/);
  });

  it('a bracketed failure: the point, the capacity and the limit are measured, with the bracket', () => {
    const d = ramp({ steps: [step(100, 'pass'), step(400, 'pass'), step(1600, 'fail', ['realtime.subscribe.p99 2100 (needs < 1000)']), step(1000, 'pass'), step(1300, 'fail', ['realtime.subscribe.p99 1200 (needs < 1000)'])], lastPass: 1000, firstFail: 1300, finding: 'degrades between 1,000 (passed) and 1,300 connections (failed)' });
    const f = degradationFigures(d, 'connections');
    expect(f.point).toMatchObject({ value: 1300, strength: 'measured', bracket: [1000, 1300] });
    expect(f.point.basis).toMatch(/realtime\.subscribe\.p99 1200/);
    expect(f.capacity).toMatchObject({ value: 1000, strength: 'measured', bracket: [1000, 1300] });
    expect(f.recommended).toMatchObject({ value: 700, strength: 'measured' });
  });

  it('a ramp that only reached its largest step is a lower bound; no passing step is not measured', () => {
    const top = degradationFigures(ramp({ steps: [step(250, 'pass'), step(1000, 'pass'), step(4000, 'pass')], lastPass: 4000, stoppedBy: 'max-reached', strength: 'lower-bound', finding: "≥ 4,000 connections: every step up to the ramp's largest (4,000) passed" }), 'connections');
    expect(top.capacity).toMatchObject({ value: 4000, strength: 'lower-bound' });
    const none = degradationFigures(ramp({ steps: [step(250, 'invalid')], strength: 'not-measured', stoppedBy: 'generator-limit', finding: 'not measured: the first step (250 connections) was INVALID' }), 'connections');
    expect(none.capacity).toMatchObject({ value: null, strength: 'not-measured' });
    expect(none.recommended.value).toBeNull();
  });
});

/** The parts of a run result a step verdict reads. */
function run(over: { valid?: boolean; failing?: boolean; machine?: number | null; gateway?: number | null }): RunResult {
  return {
    valid: over.valid ?? true,
    generator: { reasons: over.valid === false ? ['generator event-loop lag p99 80 ms in steady state exceeds 50 ms'] : [] },
    thresholds: [{ metric: 'sse.latency_e2e.p99', op: '<', value: 500, actual: over.failing ? 900 : 20, status: over.failing ? 'fail' : 'pass' }],
    server: { machineCpuMeanPct: over.machine ?? 60, steadyCpuPct: over.gateway ?? 40 },
  } as unknown as RunResult;
}

describe('ramp step verdicts', () => {
  const criteria = ['sse.latency_e2e.p99'];
  it('an INVALID run is invalid, with the generator’s reason', () => {
    expect(verdictOf(run({ valid: false }), criteria)).toEqual({ verdict: 'invalid', failures: ['generator event-loop lag p99 80 ms in steady state exceeds 50 ms'] });
  });

  it('a failure while the machine was saturated but the gateway was not is contention, not a limit', () => {
    // The recorded quick run: the failing 1,600 step at 98.8% machine CPU.
    const starved = verdictOf(run({ failing: true, machine: 98.8, gateway: 55 }), criteria);
    expect(starved.verdict).toBe('invalid');
    expect(starved.failures[0]).toMatch(/the machine was saturated \(98\.8% CPU\) while the gateway used 55% of a core/);
    // The gateway itself at a full core: a real limit, even on a busy machine.
    expect(verdictOf(run({ failing: true, machine: 99, gateway: 97 }), criteria)).toEqual({ verdict: 'fail', failures: ['sse.latency_e2e.p99 900 (needs < 500)'] });
    // A machine with room: a real limit.
    expect(verdictOf(run({ failing: true, machine: 70, gateway: 40 }), criteria).verdict).toBe('fail');
    // Passing despite contention is a pass: the gateway coped.
    expect(verdictOf(run({ machine: 99, gateway: 30 }), criteria).verdict).toBe('pass');
    expect(contention(run({ machine: null, gateway: null }))).toBeNull();
  });
});
