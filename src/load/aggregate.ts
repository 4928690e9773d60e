// The coordinator's merge of every worker's ticks. Histograms are added (never
// averaged) into per-second buckets — which give the latency-over-time series — and
// into run totals; counters are summed; gauges are the sum of each worker's latest value.
// Fan-out completion is judged per message across workers: how many subscribers got
// (stream, seq), and when the last one did, against how many were subscribed.
import { HistogramSet, decodeHistogram, newHistogram, summarize, type Histogram, type LatencySummary } from './histogram.js';
import { GENERATOR_LAG } from './recorder.js';
import type { FanoutRecord, WorkerTick } from './plan.js';

export interface Bucket {
  second: number;
  histograms: HistogramSet;
  counters: Map<string, number>;
  errors: number;
  workers: Set<number>;
  /** Sum over workers of their latest gauges when the bucket closed. */
  gauges: Record<string, number>;
  workerCpu: Map<number, number>;
}

export const FANOUT_COMPLETION = 'fanout.completion';

/** Messages are judged this long after publication, when late receivers have had their chance. */
const FANOUT_GRACE_MS = 5000;

export class FanoutTable {
  private readonly entries = new Map<string, { publishTs: number; receivers: number; last: number; expected: number; judged: boolean }>();
  messages = 0;
  judged = 0;
  complete = 0;

  constructor(private readonly histograms: HistogramSet) {}

  add(records: readonly FanoutRecord[], audienceNow: (audience: string) => number, judgeFrom: number): void {
    for (const [stream, seq, publishTs, receivers, last, audience, exclude] of records) {
      const key = `${stream}\u0000${seq}`;
      const e = this.entries.get(key);
      if (e) {
        e.receivers += receivers;
        if (last > e.last) e.last = last;
      } else {
        this.entries.set(key, { publishTs, receivers, last, expected: Math.max(0, audienceNow(audience) - exclude), judged: publishTs >= judgeFrom });
      }
    }
  }

  /** Judges messages published before `before` (all of them when omitted). */
  settle(before = Infinity): void {
    for (const [key, e] of this.entries) {
      if (e.publishTs >= before) continue;
      this.entries.delete(key);
      this.messages++;
      if (!e.judged || e.expected === 0) continue;
      this.judged++;
      if (e.receivers >= e.expected) {
        this.complete++;
        this.histograms.recordMs(FANOUT_COMPLETION, e.last - e.publishTs);
      }
    }
  }
}

export class RunAggregator {
  readonly total = new HistogramSet();
  readonly counters = new Map<string, number>();
  readonly errors = new Map<string, number>();
  readonly buckets = new Map<number, Bucket>();
  readonly fanout: FanoutTable;
  private readonly gaugesByWorker = new Map<number, Record<string, number>>();
  private readonly audiencesByWorker = new Map<number, Record<string, number>>();
  /** Every tick's CPU % per worker, for the generator's saturation check. */
  readonly workerCpu = new Map<number, number[]>();
  /** Peak of each summed gauge over the run. */
  readonly peaks = new Map<string, number>();
  /** Each generator process's own event-loop lag, so an INVALID run can name the process (and host) that lagged. */
  readonly workerLag = new Map<number, Histogram>();
  /** When each worker's latest tick arrived (coordinator clock), and how late it arrived relative to its stamp. */
  readonly lastTickAt = new Map<number, number>();
  readonly maxTickDelayMs = new Map<number, number>();
  /** Each worker's peak of open connections (SSE streams + Realtime sockets): how the load was spread over the generator. */
  readonly peakOpenByWorker = new Map<number, number>();

  constructor(
    readonly t0: number,
    private readonly judgeFanoutFrom: number,
  ) {
    this.fanout = new FanoutTable(this.total);
  }

  onTick(tick: WorkerTick, receivedAt = tick.t): void {
    this.lastTickAt.set(tick.worker, receivedAt);
    if (receivedAt - tick.t > (this.maxTickDelayMs.get(tick.worker) ?? 0)) this.maxTickDelayMs.set(tick.worker, receivedAt - tick.t);
    const lag = tick.histograms.histograms[GENERATOR_LAG];
    if (lag) {
      let h = this.workerLag.get(tick.worker);
      if (!h) this.workerLag.set(tick.worker, (h = newHistogram()));
      h.add(decodeHistogram(lag));
    }
    const second = Math.max(0, Math.floor((tick.t - this.t0) / 1000));
    let b = this.buckets.get(second);
    if (!b) {
      b = { second, histograms: new HistogramSet(), counters: new Map(), errors: 0, workers: new Set(), gauges: {}, workerCpu: new Map() };
      this.buckets.set(second, b);
    }
    b.histograms.addEncoded(tick.histograms);
    this.total.addEncoded(tick.histograms);
    for (const [k, v] of Object.entries(tick.counters)) {
      b.counters.set(k, (b.counters.get(k) ?? 0) + v);
      this.counters.set(k, (this.counters.get(k) ?? 0) + v);
    }
    for (const [k, v] of Object.entries(tick.errors)) {
      b.errors += v;
      this.errors.set(k, (this.errors.get(k) ?? 0) + v);
    }
    b.workers.add(tick.worker);
    b.workerCpu.set(tick.worker, tick.self.cpuPct);
    let cpu = this.workerCpu.get(tick.worker);
    if (!cpu) this.workerCpu.set(tick.worker, (cpu = []));
    cpu.push(tick.self.cpuPct);
    this.gaugesByWorker.set(tick.worker, tick.gauges);
    const open = (tick.gauges['sse.open'] ?? 0) + (tick.gauges['realtime.open'] ?? 0);
    if (open > (this.peakOpenByWorker.get(tick.worker) ?? 0)) this.peakOpenByWorker.set(tick.worker, open);
    this.audiencesByWorker.set(tick.worker, tick.audiences);
    b.gauges = this.gauges();
    for (const [k, v] of Object.entries(b.gauges)) if (v > (this.peaks.get(k) ?? -Infinity)) this.peaks.set(k, v);
    this.fanout.add(tick.fanout, (a) => this.audience(a), this.judgeFanoutFrom);
    this.fanout.settle(tick.t - FANOUT_GRACE_MS);
  }

  gauges(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const g of this.gaugesByWorker.values()) for (const [k, v] of Object.entries(g)) out[k] = (out[k] ?? 0) + v;
    return out;
  }

  audience(name: string): number {
    let n = 0;
    for (const a of this.audiencesByWorker.values()) n += a[name] ?? 0;
    return n;
  }

  /** The most recent bucket every worker has reported into (for live progress). */
  latestComplete(workers: number): Bucket | undefined {
    const seconds = [...this.buckets.keys()].sort((a, b) => b - a);
    for (const s of seconds) {
      const b = this.buckets.get(s)!;
      if (b.workers.size >= workers) return b;
    }
    return undefined;
  }

  /** Latency summary of the merged interval histograms named in `names`, for one bucket. */
  static bucketLatency(b: Bucket, names: readonly string[]): LatencySummary | null {
    const set = new HistogramSet();
    for (const n of names) set.get('x').add(b.histograms.get(n));
    const s = summarize(set.get('x'));
    return s.count ? s : null;
  }
}
