// The generator's own cost and the preflight built on it: CPU per connection and per
// message measured from per-second worker CPU, the capacity that follows, the forecast for
// a planned run, and pacing (a ramp lengthened to a maximum opening rate).
import { describe, expect, it } from 'vitest';
import { HistogramSet } from '../../src/load/histogram.js';
import { capacityOf, expectedMessagesPerSec, forecast, measureCost } from '../../src/load/generator-cost.js';
import { paced, type RunSpec } from '../../src/load/spec.js';
import type { Bucket } from '../../src/load/aggregate.js';

function bucket(second: number, cpuPctByWorker: number[], counters: Record<string, number>): Bucket {
  return {
    second,
    histograms: new HistogramSet(),
    counters: new Map(Object.entries(counters)),
    errors: 0,
    workers: new Set(cpuPctByWorker.map((_, i) => i)),
    gauges: {},
    // The coordinator (−1) is not a worker: its CPU must not count.
    workerCpu: new Map([[-1, 99], ...cpuPctByWorker.map((c, i) => [i, c] as [number, number])]),
  };
}

describe('generator cost', () => {
  it('splits CPU into per-message (steady) and per-connection (while connecting) cost', () => {
    // Steady: 2 workers at 10% = 200 ms CPU per second for 4,000 messages → 50 µs each.
    const steady = [bucket(3, [10, 10], { 'sse.messages': 4000 }), bucket(4, [10, 10], { 'sse.messages': 4000 })];
    // Connecting: 2 workers at 30% = 600 ms for 1,000 connects and 2,000 messages (100 ms of messages) → 0.5 ms per connect.
    const connecting = [bucket(0, [30, 30], { 'sse.connect.ok': 1000, 'sse.messages': 2000 })];
    const cost = measureCost(connecting, steady, 1000);
    expect(cost).toEqual({ cpuMsPerConnect: 0.5, cpuUsPerMessage: 50 });
    expect(capacityOf(cost, 50)).toEqual({ connectsPerSecPerWorker: 1000, messagesPerSecPerWorker: 10_000, budgetPct: 50 });
    expect(measureCost([], [], 1000)).toEqual({ cpuMsPerConnect: null, cpuUsPerMessage: null });
    // 20 messages/s and 10 connects on 2 workers: their fixed work (lag probe, ticks) would be priced as messages.
    expect(measureCost([bucket(0, [2, 2], { 'sse.connect.ok': 10, 'sse.messages': 5 })], [bucket(2, [1, 1], { 'sse.messages': 20 })], 1000)).toEqual({ cpuMsPerConnect: null, cpuUsPerMessage: null });
  });

  it('predicts a planned run, and says pacing helps while connecting but not in steady state', () => {
    const costs = { sse: { cpuMsPerConnect: 0.5, cpuUsPerMessage: 50 } };
    const sse = { connections: 4000, streams: 20, ratePerStream: 1, path: 'content' as const, reconnect: true };
    expect(expectedMessagesPerSec({ sse })).toEqual({ sse: 4000, realtime: 0 });
    // 4,000 connects over 1 s on 2 workers: 1,000 ms of CPU each per second, plus 100 ms of messages.
    const fast = forecast({ sse, rampMs: 1000 }, 2, costs);
    expect(fast.connectingCpuPct).toBe(110);
    expect(fast.steadyCpuPct).toBe(10);
    // Within 50%: 400 ms spare per worker per second → 800 connects/s per worker → 1,600/s overall.
    expect(fast.paceConnectsPerSec).toBe(1600);
    expect(fast.notes.join()).toMatch(/at most 1600 per second, i\.e\. --ramp ≥ 3 s/);
    expect(forecast({ sse, rampMs: 4000 }, 2, costs).notes).toEqual([]);
    // 40,000 messages/s cannot be paced away.
    const heavy = forecast({ sse: { ...sse, ratePerStream: 10, connections: 4000 }, rampMs: 10_000 }, 2, costs);
    expect(heavy.steadyCpuPct).toBe(100);
    expect(heavy.notes.join()).toMatch(/expect an INVALID run; add generator processes/);
  });

  it('counts what a Realtime member receives: every presence diff, the others’ broadcasts, the project’s comments', () => {
    const realtime = { projects: 10, usersPerProject: 10, presence: true, presenceIntervalMs: 10_000, docRate: 1, commentRate: 0.5, reconnect: true };
    // Per project: 10 × 10 / 10 s presence + 1 × 9 broadcasts + 0.5 × 10 comments = 24/s.
    expect(expectedMessagesPerSec({ realtime }).realtime).toBe(240);
  });

  it('paces a ramp that would open connections faster than allowed, keeping the steady part', () => {
    const spec = { name: 't', durationMs: 10_000, rampMs: 1000, pattern: 'gradual', sse: { connections: 4000 }, maxOpenRate: 1000 } as unknown as RunSpec;
    const p = paced(spec);
    expect(p.spec.rampMs).toBe(4000);
    expect(p.spec.durationMs).toBe(13_000);
    expect(p.note).toMatch(/paced at 1000\/s: the ramp took 4 s instead of 1 s/);
    expect(paced({ ...spec, maxOpenRate: 5000 })).toEqual({ spec: { ...spec, maxOpenRate: 5000 } });
    expect(paced({ ...spec, pattern: 'burst' } as RunSpec).spec.rampMs).toBe(1000);
  });
});
