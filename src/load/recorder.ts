// Everything one worker process measures, kept in forms that merge exactly across
// processes: HDR histograms (interval, drained every tick), counters and error counts
// (interval deltas), gauges (current values), per-subscription sequence trackers, uptime
// ledgers, and the per-message fan-out table (receivers and last receive time of each
// (stream, seq) seen this tick), and the roll call's marks (who is owed a stream's first
// messages; roll-call.ts). The generator's own health is measured here too: CPU
// of this process and event-loop lag, the latter as an HDR histogram of timer drift so
// it merges like every other latency.
import { HistogramSet } from './histogram.js';
import { SequenceTracker, addCounts, emptyCounts, type SequenceCounts } from './sequence.js';
import { UptimeLedger } from './uptime.js';
import { RollCallRegister } from './roll-call.js';
import type { FanoutRecord, GroupName, PublishedStreams, WorkerFinal, WorkerTick } from './plan.js';

/** Histogram name for the generator's event-loop lag (timer drift), merged over all generator processes. */
export const GENERATOR_LAG = 'generator.lag';
/** How late the generator's open-loop schedules ran their actions (its "dropped timers"); merged like a latency. */
export const SCHEDULE_LATENESS = 'generator.schedule_lateness';

const LAG_PROBE_MS = 20;

interface FanoutEntry {
  publishTs: number;
  receivers: number;
  last: number;
  audience: string;
  exclude: number;
}

export class Recorder {
  readonly histograms = new HistogramSet();
  private counters = new Map<string, number>();
  private errors = new Map<string, number>();
  readonly gauges = new Map<string, number>();
  readonly audiences = new Map<string, number>();
  private fanout = new Map<string, FanoutEntry>();
  private readonly trackers = new Map<string, { kind: string; stream: string; tracker: SequenceTracker }>();
  private readonly ledgers: { group: GroupName; ledger: UptimeLedger }[] = [];
  readonly closeCodes = new Map<string, number>();
  /** Subscribers marked at the roll call, and what each is still owed. */
  readonly rollCall = new RollCallRegister();
  private lastCpu = process.cpuUsage();
  private lastCpuAt = performance.now();
  private lagTimer: NodeJS.Timeout | undefined;

  constructor(private readonly worker: number) {}

  /**
   * Starts measuring this process's event-loop lag: a timer's drift beyond its period,
   * corrected for the samples a stall prevented (so a blocked loop shows in the p99).
   */
  startLagProbe(): void {
    if (this.lagTimer) return;
    let expected = performance.now() + LAG_PROBE_MS;
    this.lagTimer = setInterval(() => {
      const now = performance.now();
      this.histograms.recordMsPeriodic(GENERATOR_LAG, Math.max(0, now - expected), LAG_PROBE_MS);
      expected = now + LAG_PROBE_MS;
    }, LAG_PROBE_MS);
    this.lagTimer.unref();
  }

  stopLagProbe(): void {
    if (this.lagTimer) clearInterval(this.lagTimer);
    this.lagTimer = undefined;
  }

  count(name: string, n = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + n);
  }

  error(group: GroupName, kind: string): void {
    const key = `${group}:${kind}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }

  closeCode(group: GroupName, code: string): void {
    const key = `${group}:${code}`;
    this.closeCodes.set(key, (this.closeCodes.get(key) ?? 0) + 1);
  }

  gauge(name: string, delta: number): void {
    this.gauges.set(name, (this.gauges.get(name) ?? 0) + delta);
  }

  audience(name: string, delta: number): void {
    this.audiences.set(name, (this.audiences.get(name) ?? 0) + delta);
  }

  ledger(group: GroupName): UptimeLedger {
    const ledger = new UptimeLedger();
    this.ledgers.push({ group, ledger });
    return ledger;
  }

  /**
   * The sequence tracker of one subscriber for one stream (`kind` groups streams for
   * reporting: `sse`, `realtime.broadcast`, ...). Created on first use: from the number the
   * roll call says the subscriber is owed (`owedFrom`: what the message itself says, for
   * a document broadcast), else from the first number received.
   */
  tracker(subscriber: string, kind: string, stream: string, resumable: boolean, owedFrom?: number): SequenceTracker {
    const key = `${subscriber}|${stream}`;
    let t = this.trackers.get(key);
    if (!t) {
      t = { kind, stream, tracker: new SequenceTracker(this.rollCall.expectedFirst(subscriber, kind, owedFrom), resumable) };
      this.trackers.set(key, t);
    }
    return t.tracker;
  }

  /** The subscriber's connection (or channel) dropped: gaps may be expected misses, and the roll call owes it nothing new. */
  dropped(subscriber: string): void {
    for (const t of this.trackersOf(subscriber)) t.markDisconnected();
    this.rollCall.unmark(subscriber);
  }

  /** The subscriber left on purpose (churn): nothing published afterwards was due to it. */
  left(subscriber: string): void {
    for (const t of this.trackersOf(subscriber)) t.end();
    this.rollCall.unmark(subscriber);
  }

  /** Every tracker of one subscriber (to mark them disconnected when its connection drops). */
  trackersOf(subscriber: string): SequenceTracker[] {
    const prefix = `${subscriber}|`;
    const out: SequenceTracker[] = [];
    for (const [key, t] of this.trackers) if (key.startsWith(prefix)) out.push(t.tracker);
    return out;
  }

  /** One delivery of (stream, seq) published at `publishTs`, received at `receivedAt`. */
  delivery(stream: string, seq: number, publishTs: number, receivedAt: number, audience: string, exclude = 0): void {
    const key = `${stream}\u0000${seq}`;
    const e = this.fanout.get(key);
    if (e) {
      e.receivers++;
      if (receivedAt > e.last) e.last = receivedAt;
    } else {
      this.fanout.set(key, { publishTs, receivers: 1, last: receivedAt, audience, exclude });
    }
  }

  /** The tick report: interval data is drained, gauges are copied. */
  tick(now: number): WorkerTick {
    const cpu = process.cpuUsage();
    const at = performance.now();
    const cpuPct = ((cpu.user - this.lastCpu.user + cpu.system - this.lastCpu.system) / 1000 / Math.max(1, at - this.lastCpuAt)) * 100;
    this.lastCpu = cpu;
    this.lastCpuAt = at;
    const fanout: FanoutRecord[] = [];
    for (const [key, e] of this.fanout) {
      const sep = key.indexOf('\u0000');
      fanout.push([key.slice(0, sep), Number(key.slice(sep + 1)), e.publishTs, e.receivers, e.last, e.audience, e.exclude]);
    }
    this.fanout = new Map();
    const tick: WorkerTick = {
      type: 'tick',
      worker: this.worker,
      t: now,
      histograms: this.histograms.drain(),
      counters: Object.fromEntries(this.counters),
      errors: Object.fromEntries(this.errors),
      gauges: Object.fromEntries(this.gauges),
      audiences: Object.fromEntries(this.audiences),
      fanout,
      self: { cpuPct, rssBytes: process.memoryUsage.rss() },
    };
    this.counters = new Map();
    this.errors = new Map();
    return tick;
  }

  /**
   * Final per-kind sequence counts, given what the publishers say they published
   * (last sequence number per stream, and numbers whose publish failed).
   */
  final(now: number, published: Record<string, { last: number; failed: number[] }>, ownPublished: WorkerFinal['published']): WorkerFinal {
    const sequences: Record<string, SequenceCounts> = {};
    for (const { kind, stream, tracker } of this.trackers.values()) {
      const pub = published[stream];
      const counts = tracker.finish(pub?.last, pub?.failed);
      addCounts((sequences[kind] ??= emptyCounts()), counts);
    }
    for (const { kind, counts } of this.unheard(published)) addCounts((sequences[kind] ??= emptyCounts()), counts);
    const uptime: WorkerFinal['uptime'] = {};
    for (const { group, ledger } of this.ledgers) {
      const t = ledger.totals(now);
      const u = (uptime[group] ??= { connectedMs: 0, expectedMs: 0, drops: 0 });
      u.connectedMs += t.connectedMs;
      u.expectedMs += t.expectedMs;
      u.drops += ledger.unexpectedDrops;
    }
    return { type: 'final', worker: this.worker, sequences, uptime, closeCodes: Object.fromEntries(this.closeCodes), published: ownPublished };
  }

  /**
   * Streams a subscriber marked at the roll call never heard from while it stayed connected:
   * everything published from the owed number through the publisher's last is lost.
   */
  private *unheard(published: PublishedStreams): IterableIterator<{ kind: string; counts: SequenceCounts }> {
    for (const { subscriber, kind, stream, owedFrom } of this.rollCall.owed()) {
      const pub = published[stream];
      const from = owedFrom ?? pub?.owedFrom;
      if (!pub || from === undefined || this.trackers.has(`${subscriber}|${stream}`)) continue;
      yield { kind, counts: new SequenceTracker(from).finish(pub.last, pub.failed) };
    }
  }
}
