// Thresholds (parsing, defaults from the seed, evaluation) and the open-loop schedule.
import { describe, expect, it } from 'vitest';
import { SEED_THRESHOLDS, ThresholdSyntaxError, evaluateThresholds, parseThreshold, resolveThresholds, thresholdsPassed } from '../../src/load/thresholds.js';
import { OpenLoopScheduler, arrivalOffsets, churnLifetimeMs } from '../../src/load/schedule.js';

describe('thresholds', () => {
  it('parses metric, operator and number', () => {
    expect(parseThreshold('sse.latency.p99<500')).toEqual({ metric: 'sse.latency.p99', op: '<', value: 500 });
    expect(parseThreshold(' realtime.reliability_pct >= 99.9 ')).toEqual({ metric: 'realtime.reliability_pct', op: '>=', value: 99.9 });
    expect(() => parseThreshold('p99 under 5')).toThrow(ThresholdSyntaxError);
    expect(() => parseThreshold('sse.latency.p99<<5')).toThrow(/not of the form/);
  });

  it('defaults are the seed acceptance criteria, and a user threshold replaces the default on the same metric', () => {
    const metrics = SEED_THRESHOLDS.map((t) => t.metric);
    expect(metrics).toEqual(expect.arrayContaining(['sse.latency_e2e.p99', 'sse.stability_pct', 'realtime.presence.p99', 'realtime.reliability_pct', 'server.memory_per_connection_mb']));
    // The delivery criterion is judged from the intended publish time; the server stamp only stands in when nothing was published.
    expect(SEED_THRESHOLDS.find((t) => t.metric === 'sse.latency_e2e.p99')).toMatchObject({ op: '<', value: 500, fallbackMetric: 'sse.latency.p99' });
    expect(SEED_THRESHOLDS.find((t) => t.metric === 'sse.latency.p99')).toBeUndefined();
    const resolved = resolveThresholds(['sse.latency_e2e.p99<100', 'sse.errors==0']);
    expect(resolved.filter((t) => t.metric === 'sse.latency_e2e.p99')).toEqual([{ metric: 'sse.latency_e2e.p99', op: '<', value: 100 }]);
    expect(resolved.length).toBe(SEED_THRESHOLDS.length + 1);
    expect(resolveThresholds(['sse.errors==0'], false)).toHaveLength(1);
  });

  it('judges pass, fail and no-data; defaults without data are skipped, user thresholds without data fail', () => {
    const results = evaluateThresholds(resolveThresholds(['sse.errors==0']), { 'sse.latency_e2e.p99': 620, 'sse.stability_pct': 99.5, 'realtime.presence.p99': null });
    const by = (m: string) => results.find((r) => r.metric === m)!;
    expect(by('sse.latency_e2e.p99')).toMatchObject({ status: 'fail', actual: 620 });
    expect(by('sse.stability_pct').status).toBe('pass');
    expect(by('realtime.presence.p99').status).toBe('no-data');
    expect(by('sse.errors').status).toBe('no-data');
    expect(thresholdsPassed(results)).toBe(false);
    expect(thresholdsPassed(evaluateThresholds(resolveThresholds([]), { 'sse.latency_e2e.p99': 100 }))).toBe(true);
    expect(thresholdsPassed(evaluateThresholds(resolveThresholds(['sse.errors==0'], false), {}))).toBe(false);
  });

  it('judges the intended-time latency where the tester published, and the server stamp only where it did not', () => {
    const stalled = { 'sse.latency_e2e.p99': 972, 'sse.latency.p99': 14 };
    const e2e = evaluateThresholds(resolveThresholds([]), stalled).find((r) => r.metric === 'sse.latency_e2e.p99')!;
    expect(e2e).toMatchObject({ status: 'fail', actual: 972 });
    expect(e2e.judgedOn).toBeUndefined();
    // --sse-url: someone else publishes, so only the server's stamp exists.
    const foreign = evaluateThresholds(resolveThresholds([]), { 'sse.latency.p99': 14 }).find((r) => r.metric === 'sse.latency_e2e.p99')!;
    expect(foreign).toMatchObject({ status: 'pass', actual: 14, judgedOn: 'sse.latency.p99' });
  });
});

describe('open-loop schedule', () => {
  it('spreads arrivals by pattern', () => {
    expect(arrivalOffsets(4, 'burst', 1000)).toEqual([0, 0, 0, 0]);
    expect(arrivalOffsets(4, 'gradual', 1000)).toEqual([0, 250, 500, 750]);
    const lifetimes = Array.from({ length: 100 }, (_, i) => churnLifetimeMs(10_000, i, 0));
    expect(Math.min(...lifetimes)).toBeGreaterThanOrEqual(5000);
    expect(Math.max(...lifetimes)).toBeLessThan(15_000);
    expect(churnLifetimeMs(10_000, 3, 1)).toBe(churnLifetimeMs(10_000, 3, 1));
  });

  it('runs overdue actions with their INTENDED times after a stall (no coordinated omission)', () => {
    let now = 1000;
    const fired: [string, number, number][] = [];
    const lateness: number[] = [];
    const s = new OpenLoopScheduler(
      [
        { key: 'a', intervalMs: 100, phaseMs: 0 },
        { key: 'b', intervalMs: 250, phaseMs: 50 },
      ],
      1000,
      1500,
      (stream, k, intended) => fired.push([stream.key, k, intended]),
      () => now,
      (ms) => lateness.push(ms),
    );
    now = 1000;
    s.runDue();
    // The generator stalls for 350 ms: everything due meanwhile still fires, stamped with its own time.
    now = 1350;
    s.runDue();
    expect(fired).toEqual([
      ['a', 0, 1000],
      ['b', 0, 1050],
      ['a', 1, 1100],
      ['a', 2, 1200],
      ['b', 1, 1300],
      ['a', 3, 1300],
    ]);
    expect(Math.max(...lateness)).toBe(300);
    now = 2000;
    s.runDue();
    // Nothing at or after the end time.
    expect(fired.filter(([, , t]) => t >= 1500)).toEqual([]);
    expect(fired.filter(([k]) => k === 'a')).toHaveLength(5);
    expect(s.done).toBe(true);
  });
});
