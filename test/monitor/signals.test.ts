import { describe, expect, it } from 'vitest';
import { bucketQuantile, evaluateSignal, subtractBuckets, COUNTERS, type Buckets, type Snapshot } from '../../src/monitor/signals.js';

function snapshot(t: number, over: { gauges?: Snapshot['gauges']; counters?: Partial<Snapshot['counters']>; delivery?: Buckets } = {}): Snapshot {
  const counters = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Snapshot['counters'];
  return { t, gauges: over.gauges ?? {}, counters: { ...counters, ...over.counters }, histograms: { delivery_latency: over.delivery ?? [], change_feed_lag: [] } };
}

describe('bucketQuantile (histogram_quantile)', () => {
  const buckets: Buckets = [
    [0.1, 50],
    [0.5, 90],
    [1, 100],
    [Infinity, 100],
  ];

  it('interpolates linearly inside the bucket that holds the rank', () => {
    expect(bucketQuantile(0.5, buckets)).toBeCloseTo(0.1, 10); // rank 50 = top of the first bucket
    expect(bucketQuantile(0.25, buckets)).toBeCloseTo(0.05, 10); // half-way through [0, 0.1]
    expect(bucketQuantile(0.7, buckets)).toBeCloseTo(0.3, 10); // rank 70: half-way through (0.1, 0.5]
    expect(bucketQuantile(0.99, buckets)).toBeCloseTo(0.95, 10); // rank 99 of (0.5, 1]
  });

  it('reports the highest finite bound when the rank falls in +Inf, and nothing without observations', () => {
    expect(bucketQuantile(0.99, [[0.1, 1], [1, 1], [Infinity, 10]])).toBe(1);
    expect(bucketQuantile(0.99, [[0.1, 0], [Infinity, 0]])).toBeUndefined();
    expect(bucketQuantile(0.5, [])).toBeUndefined();
  });

  it('subtracts an earlier snapshot, treating bounds it lacks as zero', () => {
    expect(subtractBuckets([[0.1, 5], [Infinity, 9]], [[0.1, 2]])).toEqual([[0.1, 3], [Infinity, 9]]);
  });
});

describe('evaluateSignal', () => {
  it('computes a rate from the first and last snapshot of the window', () => {
    const w = [snapshot(1000, { counters: { messages_out: 100 } }), snapshot(2000, { counters: { messages_out: 150 } }), snapshot(3000, { counters: { messages_out: 300 } })];
    expect(evaluateSignal('messages_out_per_second', w)).toBe(100);
    expect(evaluateSignal('messages_out_per_second', w.slice(1))).toBe(150);
    expect(evaluateSignal('messages_out_per_second', w.slice(2))).toBeUndefined();
  });

  it('aggregates a gauge over the snapshots after the baseline, with the signal default or an override', () => {
    const w = [snapshot(0, { gauges: { connections_sse: 1000 } }), snapshot(1, { gauges: { connections_sse: 10 } }), snapshot(2, { gauges: { connections_sse: 30 } })];
    expect(evaluateSignal('connections_sse', w)).toBe(30); // default `last`
    expect(evaluateSignal('connections_sse', w, 'avg')).toBe(20);
    expect(evaluateSignal('connections_sse', w, 'max')).toBe(30); // the baseline's 1000 is outside the window
    expect(evaluateSignal('connections_sse', [w[0]!])).toBe(1000);
    expect(evaluateSignal('open_files', w)).toBeUndefined();
  });

  it('estimates a percentile from the observations made inside the window only', () => {
    // 100 old observations under 1 ms; 10 new ones between 0.25 s and 0.5 s.
    const before: Buckets = [[0.001, 100], [0.25, 100], [0.5, 100], [Infinity, 100]];
    const after: Buckets = [[0.001, 100], [0.25, 100], [0.5, 110], [Infinity, 110]];
    const p99 = evaluateSignal('delivery_latency_p99_seconds', [snapshot(0, { delivery: before }), snapshot(1000, { delivery: after })]);
    expect(p99).toBeGreaterThan(0.25);
    expect(p99).toBeLessThanOrEqual(0.5);
    expect(evaluateSignal('delivery_latency_p99_seconds', [snapshot(0, { delivery: after }), snapshot(1000, { delivery: after })])).toBeUndefined();
  });
});
