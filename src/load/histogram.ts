// HDR histograms for every time measurement the load tester makes. Values are recorded
// in MICROSECONDS (integers) and summarized in milliseconds. Histograms travel between
// worker processes as compressed base64 and are MERGED (bucket counts added), never
// averaged: the p99 of a merged histogram is the p99 of every sample from every worker.
import * as hdr from 'hdr-histogram-js';

export type Histogram = hdr.Histogram;

/** One hour in microseconds: anything slower is clamped and counted as out of range. */
export const HIGHEST_TRACKABLE_US = 3_600_000_000;

export function newHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 32,
    autoResize: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_US,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function decodeHistogram(encoded: string): Histogram {
  return hdr.decodeFromCompressedBase64(encoded, 32, false);
}

/** Adds every histogram into a new one. Merging is exact: counts per bucket are summed. */
export function mergeHistograms(parts: Iterable<Histogram>): Histogram {
  const out = newHistogram();
  for (const h of parts) if (h.totalCount > 0) out.add(h);
  return out;
}

/** Percentile summary in milliseconds (3 decimals); all fields null when there are no samples. */
export interface LatencySummary {
  count: number;
  min: number | null;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
}

const ms = (us: number): number => Math.round(us) / 1000;

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, min: null, mean: null, p50: null, p90: null, p99: null, p999: null, max: null };
  return {
    count: h.totalCount,
    min: ms(h.getValueAtPercentile(0)),
    mean: ms(h.mean),
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

/**
 * A named set of histograms, with per-name counters for samples that could not be
 * recorded honestly: negative latencies (clock skew between sender and receiver) are
 * recorded as 0 AND counted, never silently dropped; values above an hour are clamped.
 */
export class HistogramSet {
  private readonly histograms = new Map<string, Histogram>();
  readonly negative = new Map<string, number>();
  readonly clamped = new Map<string, number>();

  /** Records a duration in milliseconds (fractions allowed). */
  recordMs(name: string, valueMs: number): void {
    let us = Math.round(valueMs * 1000);
    if (us < 0) {
      this.negative.set(name, (this.negative.get(name) ?? 0) + 1);
      us = 0;
    } else if (us > HIGHEST_TRACKABLE_US) {
      this.clamped.set(name, (this.clamped.get(name) ?? 0) + 1);
      us = HIGHEST_TRACKABLE_US;
    }
    this.get(name).recordValue(us);
  }

  /**
   * Records a sample taken on a fixed period (a timer probe), correcting for coordinated
   * omission: a stall of N periods also records the N−1 samples that could not be taken
   * while the loop was blocked (N−1 periods, N−2, …), as HdrHistogram's
   * recordValueWithExpectedInterval does. Without this, one 5 s stall in a 15 s run is one
   * sample among 750 and never reaches the p99.
   */
  recordMsPeriodic(name: string, valueMs: number, periodMs: number): void {
    const us = Math.min(HIGHEST_TRACKABLE_US, Math.max(0, Math.round(valueMs * 1000)));
    this.get(name).recordValueWithExpectedInterval(us, Math.max(1, Math.round(periodMs * 1000)));
  }

  get(name: string): Histogram {
    let h = this.histograms.get(name);
    if (!h) {
      h = newHistogram();
      this.histograms.set(name, h);
    }
    return h;
  }

  names(): string[] {
    return [...this.histograms.keys()];
  }

  /** Encodes the non-empty histograms and the anomaly counts, then clears everything (interval semantics). */
  drain(): EncodedHistograms {
    const out: EncodedHistograms = { histograms: {}, negative: Object.fromEntries(this.negative), clamped: Object.fromEntries(this.clamped) };
    for (const [name, h] of this.histograms) {
      if (h.totalCount > 0) out.histograms[name] = encodeHistogram(h);
      h.reset();
    }
    this.negative.clear();
    this.clamped.clear();
    return out;
  }

  /** Adds an encoded interval (from another process) into this set. */
  addEncoded(enc: EncodedHistograms): void {
    for (const [name, b64] of Object.entries(enc.histograms)) this.get(name).add(decodeHistogram(b64));
    for (const [name, n] of Object.entries(enc.negative)) this.negative.set(name, (this.negative.get(name) ?? 0) + n);
    for (const [name, n] of Object.entries(enc.clamped)) this.clamped.set(name, (this.clamped.get(name) ?? 0) + n);
  }

  /** Adds another set into this one. */
  addSet(other: HistogramSet): void {
    for (const name of other.names()) {
      const h = other.get(name);
      if (h.totalCount > 0) this.get(name).add(h);
    }
    for (const [name, n] of other.negative) this.negative.set(name, (this.negative.get(name) ?? 0) + n);
    for (const [name, n] of other.clamped) this.clamped.set(name, (this.clamped.get(name) ?? 0) + n);
  }

  summary(name: string): LatencySummary {
    return summarize(this.histograms.get(name) ?? newHistogram());
  }
}

export interface EncodedHistograms {
  histograms: Record<string, string>;
  negative: Record<string, number>;
  clamped: Record<string, number>;
}
