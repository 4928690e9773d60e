// Takes a Snapshot of the gateway's instruments and the process's resources, and keeps
// a bounded history of them for alert windows and the dashboard. The counters are read
// from the same prom-client registry `/metrics` exposes, so an alert, a dashboard chart
// and a Prometheus query all see one set of numbers.
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { GatewayMetrics } from '../server/metrics.js';
import type { ConnectionManager } from '../server/connections.js';
import type { ProcessStats } from './process-stats.js';
import { COUNTERS, HISTOGRAMS, type Buckets, type CounterName, type Snapshot } from './signals.js';

type AnyMetric = Counter | Gauge | Histogram;

/** Sum of a metric's values across its label sets, optionally keeping only some of them. */
async function sum(metric: AnyMetric, keep?: (labels: Record<string, string | number>) => boolean): Promise<number> {
  let total = 0;
  for (const v of (await metric.get()).values) if (!keep || keep(v.labels as Record<string, string | number>)) total += v.value;
  return total;
}

/** A histogram's cumulative bucket counts summed across its label sets. */
async function buckets(metric: Histogram): Promise<Buckets> {
  const byBound = new Map<number, number>();
  for (const v of (await metric.get()).values) {
    if (!v.metricName?.endsWith('_bucket')) continue;
    const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
    byBound.set(le, (byBound.get(le) ?? 0) + v.value);
  }
  return [...byBound].sort((a, b) => a[0] - b[0]);
}

export class Sampler {
  private readonly history: Snapshot[] = [];

  constructor(
    private readonly metrics: GatewayMetrics,
    private readonly connections: ConnectionManager,
    private readonly process: ProcessStats,
    /** Snapshots kept; enough for the longest alert window and the dashboard's history. */
    private readonly capacity: number,
  ) {}

  async take(now: number): Promise<Snapshot> {
    const m = this.metrics;
    const direction = (d: string) => (l: Record<string, string | number>) => l.direction === d;
    const proc = await this.process.read();
    const counterValues: [CounterName, Promise<number> | number][] = [
      ['messages_in', sum(m.messages, direction('in'))],
      ['messages_out', sum(m.messages, direction('out'))],
      ['bytes_in', sum(m.bytes, direction('in'))],
      ['bytes_out', sum(m.bytes, direction('out'))],
      ['publishes', sum(m.publishes)],
      ['errors', sum(m.errors)],
      ['joins', sum(m.joins)],
      ['slow_consumer_disconnects', sum(m.slowConsumerDisconnects)],
      ['connections_opened', sum(m.connectionsOpened)],
      ['connections_rejected', sum(m.connectionsRejected)],
      ['cpu_seconds', proc.cpuSeconds],
    ];
    const counters = Object.fromEntries(await Promise.all(counterValues.map(async ([k, v]) => [k, await v] as const))) as Snapshot['counters'];
    for (const c of COUNTERS) counters[c] ??= 0;
    const [delivery, changeFeed, channels, presence, changeLagLast, slotBytes, slotSeconds] = await Promise.all([
      buckets(m.deliveryLatency),
      buckets(m.changeFeedLag),
      sum(m.channels),
      sum(m.presenceMembers),
      m.changeFeedLagLast.get(),
      m.changeSlotLagBytes.get(),
      m.changeSlotLagSeconds.get(),
    ]);
    // Labelled by slot: no series at all unless the gateway captures from the WAL.
    const largest = (g: typeof slotBytes) => (g.values.length ? Math.max(...g.values.map((v) => v.value)) : undefined);
    const histograms: Snapshot['histograms'] = { delivery_latency: delivery, change_feed_lag: changeFeed };
    for (const h of HISTOGRAMS) histograms[h] ??= [];
    const c = this.connections;
    const snapshot: Snapshot = {
      t: now,
      counters,
      histograms,
      gauges: {
        connections: c.size,
        connections_sse: c.count('sse'),
        connections_poll: c.count('poll'),
        connections_ws: c.count('ws'),
        connections_dashboard: c.count('dashboard'),
        channels,
        presence_members: presence,
        rss_bytes: proc.rssBytes,
        heap_used_bytes: proc.heapUsedBytes,
        open_files: proc.openFiles,
        max_open_files: proc.maxOpenFiles,
        open_files_ratio: proc.openFiles !== undefined && proc.maxOpenFiles ? proc.openFiles / proc.maxOpenFiles : undefined,
        event_loop_lag_p99_seconds: proc.eventLoopLagP99Seconds,
        event_loop_lag_max_seconds: proc.eventLoopLagMaxSeconds,
        // An unlabelled gauge reads 0 before it is ever set; only a dispatched change gives it meaning.
        change_feed_lag_last_seconds: (changeFeed.at(-1)?.[1] ?? 0) > 0 ? changeLagLast.values[0]?.value : undefined,
        change_slot_lag_bytes: largest(slotBytes),
        change_slot_lag_seconds: largest(slotSeconds),
      },
    };
    this.history.push(snapshot);
    if (this.history.length > this.capacity) this.history.splice(0, this.history.length - this.capacity);
    return snapshot;
  }

  get latest(): Snapshot | undefined {
    return this.history[this.history.length - 1];
  }

  /**
   * The snapshots covering the last `ms` before the latest one: a baseline taken at or
   * before the window's start, then every later snapshot. Early in the process's life,
   * when history is shorter than the window, the window starts at the oldest snapshot.
   */
  window(ms: number): Snapshot[] {
    const last = this.latest;
    if (!last) return [];
    const start = last.t - ms;
    let i = this.history.length - 1;
    while (i > 0 && this.history[i]!.t > start) i--;
    return this.history.slice(i);
  }

  /** The last two snapshots: the window a dashboard point describes. */
  lastInterval(): Snapshot[] {
    return this.history.slice(-2);
  }
}
