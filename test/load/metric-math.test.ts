// The load tester's arithmetic on inputs whose answers are known by hand.
import { describe, expect, it } from 'vitest';
import { HistogramSet, decodeHistogram, encodeHistogram, mergeHistograms, newHistogram, summarize } from '../../src/load/histogram.js';
import { SequenceTracker } from '../../src/load/sequence.js';
import { UptimeLedger, stability } from '../../src/load/uptime.js';
import { linearFit } from '../../src/load/fit.js';
import { ClockOffsetEstimator } from '../../src/load/clock.js';

describe('percentiles from HDR histograms', () => {
  it('gives the percentiles of 1..1000 ms within HDR precision (3 significant digits)', () => {
    const set = new HistogramSet();
    for (let v = 1; v <= 1000; v++) set.recordMs('lat', v);
    const s = set.summary('lat');
    expect(s.count).toBe(1000);
    expect(s.p50).toBeCloseTo(500, -0.5); // within ±1 ms at 3 significant digits
    expect(Math.abs(s.p90! - 900)).toBeLessThanOrEqual(1);
    expect(Math.abs(s.p99! - 990)).toBeLessThanOrEqual(1);
    expect(Math.abs(s.p999! - 999)).toBeLessThanOrEqual(1);
    expect(Math.abs(s.max! - 1000)).toBeLessThanOrEqual(1);
    expect(s.min).toBe(1);
    expect(s.mean).toBeCloseTo(500.5, 0);
  });

  it('keeps sub-millisecond resolution (values are recorded in microseconds)', () => {
    const set = new HistogramSet();
    set.recordMs('x', 0.25);
    set.recordMs('x', 0.75);
    expect(set.summary('x').min).toBeCloseTo(0.25, 3);
    expect(set.summary('x').max).toBeCloseTo(0.75, 3);
  });

  it('reports nulls, not zeros, when nothing was recorded', () => {
    expect(new HistogramSet().summary('none')).toEqual({ count: 0, min: null, mean: null, p50: null, p90: null, p99: null, p999: null, max: null });
  });

  it('corrects a periodic probe for coordinated omission: a long stall reaches the p99', () => {
    const plain = new HistogramSet();
    const corrected = new HistogramSet();
    // A 20 ms probe over 15 s: 749 on-time samples and one that waited out a 5 s stall.
    for (let i = 0; i < 749; i++) {
      plain.recordMs('lag', 0.2);
      corrected.recordMsPeriodic('lag', 0.2, 20);
    }
    plain.recordMs('lag', 5000);
    corrected.recordMsPeriodic('lag', 5000, 20);
    expect(plain.summary('lag').p99).toBeLessThan(1);
    // The stall also stands for the 249 samples it prevented (4980, 4960, …, 20 ms).
    expect(corrected.summary('lag').count).toBe(750 + 249);
    expect(corrected.summary('lag').p99!).toBeGreaterThan(4000);
    expect(corrected.summary('lag').p90!).toBeGreaterThan(1000);
  });

  it('counts negative latencies (clock skew) instead of dropping them, and records them as 0', () => {
    const set = new HistogramSet();
    set.recordMs('lat', -5);
    set.recordMs('lat', 10);
    expect(set.negative.get('lat')).toBe(1);
    expect(set.summary('lat').count).toBe(2);
    expect(set.summary('lat').min).toBe(0);
  });
});

describe('merged histograms', () => {
  it('merging two workers gives the percentiles of all samples, not the average of their percentiles', () => {
    // Worker A saw 990 fast messages (1 ms); worker B saw 10 slow ones (1000 ms).
    const a = newHistogram();
    const b = newHistogram();
    for (let i = 0; i < 990; i++) a.recordValue(1000);
    for (let i = 0; i < 10; i++) b.recordValue(1_000_000);
    const merged = mergeHistograms([decodeHistogram(encodeHistogram(a)), decodeHistogram(encodeHistogram(b))]);
    const s = summarize(merged);
    expect(s.count).toBe(1000);
    expect(s.p50).toBe(1);
    expect(s.p99).toBe(1); // 990 of 1000 samples are ≤ 1 ms
    expect(s.p999).toBeCloseTo(1000, -1);
    // Averaging the two workers' p99s would have claimed ~500 ms.
    const averaged = (summarize(a).p99! + summarize(b).p99!) / 2;
    expect(averaged).toBeGreaterThan(400);
  });

  it('survives the encode/decode round trip exactly, and addEncoded drains interval data', () => {
    const worker = new HistogramSet();
    for (let v = 1; v <= 100; v++) worker.recordMs('lat', v);
    worker.recordMs('lat', -1);
    const coordinator = new HistogramSet();
    coordinator.addEncoded(worker.drain());
    expect(worker.get('lat').totalCount).toBe(0);
    for (let v = 101; v <= 200; v++) worker.recordMs('lat', v);
    coordinator.addEncoded(worker.drain());
    const s = coordinator.summary('lat');
    expect(s.count).toBe(201);
    expect(Math.abs(s.p50! - 100)).toBeLessThanOrEqual(1);
    expect(coordinator.negative.get('lat')).toBe(1);
  });
});

describe('loss, duplicate and reorder detection', () => {
  const feed = (t: SequenceTracker, seqs: number[]): string[] => seqs.map((s) => t.observe(s));

  it('counts nothing wrong in an in-order stream', () => {
    const t = new SequenceTracker();
    feed(t, [1, 2, 3, 4, 5]);
    expect(t.finish(5)).toEqual({ received: 5, unique: 5, duplicates: 0, reordered: 0, lost: 0, missedWhileDisconnected: 0 });
  });

  it('classifies gaps, late arrivals and duplicates', () => {
    const t = new SequenceTracker();
    expect(feed(t, [1, 2, 4, 3, 3, 6, 8, 8])).toEqual(['first', 'in-order', 'gap', 'reordered', 'duplicate', 'gap', 'gap', 'duplicate']);
    // 5 and 7 never came; 3 came late; 3 and 8 twice.
    expect(t.finish(8)).toEqual({ received: 8, unique: 6, duplicates: 2, reordered: 1, lost: 2, missedWhileDisconnected: 0 });
  });

  it('counts tail losses only the publisher can reveal', () => {
    const t = new SequenceTracker();
    feed(t, [1, 2, 3]);
    expect(t.finish(6).lost).toBe(3);
    expect(new SequenceTracker().finish(6).lost).toBe(0); // received nothing, baseline unknown: no claim
    const known = new SequenceTracker(1);
    expect(known.finish(4).lost).toBe(4); // live before the first publish: everything missing is lost
  });

  it('does not count numbers the publisher failed to send', () => {
    const t = new SequenceTracker();
    feed(t, [1, 2, 4, 6]);
    expect(t.finish(7, [3, 7]).lost).toBe(1); // 5 is lost; 3 and 7 were never published
  });

  it('separates misses across a disconnect from losses on a live connection (non-resumable transport)', () => {
    const t = new SequenceTracker(undefined, false);
    feed(t, [1, 2]);
    t.markDisconnected();
    feed(t, [6, 7]);
    const c = t.finish(7);
    expect(c.missedWhileDisconnected).toBe(3);
    expect(c.lost).toBe(0);
  });

  it('on a resumable transport (SSE with Last-Event-ID) a gap after reconnect is a real loss', () => {
    const t = new SequenceTracker(undefined, true);
    feed(t, [1, 2]);
    t.markDisconnected();
    feed(t, [6, 7]);
    expect(t.finish(7).lost).toBe(3);
  });

  it('a subscriber that left on purpose is not owed what was published after it left', () => {
    const t = new SequenceTracker();
    feed(t, [1, 2, 4]);
    t.end();
    expect(t.finish(9)).toMatchObject({ lost: 1 }); // 3 was lost while it listened; 5–9 came after it left
  });

  it('a snapshot sets the baseline without counting a delivery', () => {
    const t = new SequenceTracker();
    t.baseline(10);
    feed(t, [11, 13]);
    expect(t.finish(13)).toMatchObject({ received: 2, unique: 2, lost: 1 });
  });

  it('bounds memory on huge gaps and still counts them all as lost', () => {
    const t = new SequenceTracker(undefined, false, 16);
    feed(t, [1, 1_000_001]);
    expect(t.finish(1_000_001).lost).toBe(999_999);
  });
});

describe('connection stability', () => {
  it('is connected time over the time since first connecting, across connections', () => {
    const a = new UptimeLedger();
    a.connected(0);
    a.disconnected(10_000);
    a.connected(12_000);
    a.end(100_000);
    const b = new UptimeLedger();
    b.connected(0);
    b.end(100_000);
    expect(a.totals(100_000)).toEqual({ connectedMs: 98_000, expectedMs: 100_000 });
    expect(a.unexpectedDrops).toBe(1);
    expect(stability([a.totals(100_000), b.totals(100_000)])).toBeCloseTo(0.99, 6);
  });

  it('leaves connection establishment out (measured as connect time and success), and measures open windows up to now', () => {
    const never = new UptimeLedger();
    const slow = new UptimeLedger();
    slow.connected(5000);
    expect(never.totals(10_000)).toEqual({ connectedMs: 0, expectedMs: 0 });
    expect(slow.totals(10_000)).toEqual({ connectedMs: 5000, expectedMs: 5000 });
    const dropped = new UptimeLedger();
    dropped.connected(0);
    dropped.disconnected(4000);
    expect(stability([never.totals(10_000), slow.totals(10_000), dropped.totals(10_000)])).toBeCloseTo(9000 / 15_000, 6);
    expect(stability([])).toBe(1);
  });
});

describe('linear fit (memory per connection)', () => {
  it('recovers slope, intercept and r² = 1 on an exact line', () => {
    const pts = [0, 100, 200, 300].map((x) => ({ x, y: 50 + 0.02 * x }));
    const f = linearFit(pts)!;
    expect(f.slope).toBeCloseTo(0.02, 10);
    expect(f.intercept).toBeCloseTo(50, 10);
    expect(f.r2).toBeCloseTo(1, 10);
    expect([f.n, f.xMin, f.xMax]).toEqual([4, 0, 300]);
  });

  it('matches a hand-computed least-squares fit on noisy points', () => {
    // x: 1,2,3,4  y: 2,3,5,4 → slope 0.8, intercept 1.5, r² = 0.64
    const f = linearFit([
      { x: 1, y: 2 },
      { x: 2, y: 3 },
      { x: 3, y: 5 },
      { x: 4, y: 4 },
    ])!;
    expect(f.slope).toBeCloseTo(0.8, 10);
    expect(f.intercept).toBeCloseTo(1.5, 10);
    expect(f.r2).toBeCloseTo(0.64, 10);
  });

  it('refuses to fit a line through one x value', () => {
    expect(linearFit([{ x: 5, y: 1 }])).toBeNull();
    expect(linearFit([{ x: 5, y: 1 }, { x: 5, y: 2 }])).toBeNull();
  });
});

describe('clock offset between generator and server', () => {
  it('takes the shortest round trip as the estimate, NTP-style', () => {
    const c = new ClockOffsetEstimator();
    expect(c.estimate()).toBeNull();
    // Server clock 100 ms ahead. Request sent at 1000, answered at 1040 (stamped on arrival 1020 + 100).
    c.sample(1000, 1040, 1120);
    // A quicker exchange: sent 2000, answered 2004, stamped at 2002 + 100.
    c.sample(2000, 2004, 2102);
    c.sample(3000, 2990, 3000); // a negative round trip (a clock step) is ignored
    expect(c.estimate()).toEqual({ offsetMs: 100, uncertaintyMs: 2, samples: 2 });
  });
});
