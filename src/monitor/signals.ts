// The monitor's vocabulary: named signals computed from periodic snapshots of the
// gateway's instruments. Alert rules name a signal and the dashboard plots them, so an
// alert and the chart beside it always agree on what a number means.
//
// Three kinds, evaluated over a window of snapshots the way Prometheus would:
// - gauge:    a level at each snapshot (connections, RSS); aggregated over the window
//             with `last`, `avg`, `min` or `max`.
// - rate:     per-second increase of a cumulative counter between the window's first
//             and last snapshot (`rate(x[window])`).
// - quantile: a percentile of the observations made during the window, estimated from
//             histogram bucket deltas with linear interpolation inside the bucket
//             (`histogram_quantile(q, rate(x_bucket[window]))`).

/** Cumulative counters sampled from the metrics registry and the process. */
export const COUNTERS = [
  'messages_in',
  'messages_out',
  'bytes_in',
  'bytes_out',
  'publishes',
  'errors',
  'joins',
  'slow_consumer_disconnects',
  'connections_opened',
  'connections_rejected',
  'cpu_seconds',
] as const;
export type CounterName = (typeof COUNTERS)[number];

/** Point-in-time levels. */
export const GAUGES = [
  'connections',
  'connections_sse',
  'connections_poll',
  'connections_ws',
  'connections_dashboard',
  'channels',
  'presence_members',
  'rss_bytes',
  'heap_used_bytes',
  'open_files',
  'max_open_files',
  'open_files_ratio',
  'event_loop_lag_p99_seconds',
  'event_loop_lag_max_seconds',
  'change_feed_lag_last_seconds',
  'change_slot_lag_bytes',
  'change_slot_lag_seconds',
] as const;
export type GaugeName = (typeof GAUGES)[number];

export const HISTOGRAMS = ['delivery_latency', 'change_feed_lag'] as const;
export type HistogramName = (typeof HISTOGRAMS)[number];

/** Cumulative bucket counts as `[upper bound, count]`, ascending, the last bound `Infinity`. */
export type Buckets = [number, number][];

/** Everything the monitor read at one instant; counters and buckets are cumulative. */
export interface Snapshot {
  t: number;
  gauges: Partial<Record<GaugeName, number>>;
  counters: Record<CounterName, number>;
  histograms: Record<HistogramName, Buckets>;
}

export type Aggregate = 'last' | 'avg' | 'min' | 'max';

type SignalDef =
  | { kind: 'gauge'; gauge: GaugeName; aggregate: Aggregate; help: string }
  | { kind: 'rate'; counter: CounterName; help: string }
  | { kind: 'quantile'; histogram: HistogramName; q: number; help: string };

const gauge = (g: GaugeName, aggregate: Aggregate, help: string): SignalDef => ({ kind: 'gauge', gauge: g, aggregate, help });
const rate = (counter: CounterName, help: string): SignalDef => ({ kind: 'rate', counter, help });
const quantile = (histogram: HistogramName, q: number, help: string): SignalDef => ({ kind: 'quantile', histogram, q, help });

/** Every signal a rule may name, with its default window aggregation (gauges) and meaning. */
export const SIGNALS = {
  connections: gauge('connections', 'last', 'open long-lived connections, all transports'),
  connections_sse: gauge('connections_sse', 'last', 'open SSE streams'),
  connections_poll: gauge('connections_poll', 'last', 'open long-polls'),
  connections_ws: gauge('connections_ws', 'last', 'open Realtime WebSockets'),
  connections_dashboard: gauge('connections_dashboard', 'last', 'open dashboard feeds'),
  channels: gauge('channels', 'last', 'joined Realtime channels'),
  presence_members: gauge('presence_members', 'last', 'tracked presence metas'),
  rss_bytes: gauge('rss_bytes', 'last', 'resident set size of the process'),
  heap_used_bytes: gauge('heap_used_bytes', 'last', 'V8 heap in use'),
  open_files: gauge('open_files', 'last', 'open file descriptors (sockets included)'),
  max_open_files: gauge('max_open_files', 'last', 'the open-file limit of the process'),
  open_files_ratio: gauge('open_files_ratio', 'last', 'open files / open-file limit (0..1)'),
  event_loop_lag_p99_seconds: gauge('event_loop_lag_p99_seconds', 'avg', 'event-loop delay, 99th percentile of each sample interval'),
  event_loop_lag_max_seconds: gauge('event_loop_lag_max_seconds', 'max', 'longest event-loop delay in each sample interval'),
  change_feed_lag_last_seconds: gauge('change_feed_lag_last_seconds', 'last', 'commit-to-dispatch lag of the latest database change'),
  change_slot_lag_bytes: gauge('change_slot_lag_bytes', 'last', 'WAL held back by the change feed\'s replication slot (WAL capture)'),
  change_slot_lag_seconds: gauge('change_slot_lag_seconds', 'last', 'age of the oldest WAL the replication slot has not confirmed (WAL capture)'),
  cpu_ratio: rate('cpu_seconds', 'CPU seconds per second (1 = one core busy)'),
  messages_in_per_second: rate('messages_in', 'messages received from clients and publishers'),
  messages_out_per_second: rate('messages_out', 'messages written to subscribers'),
  bytes_in_per_second: rate('bytes_in', 'payload bytes received'),
  bytes_out_per_second: rate('bytes_out', 'payload bytes written'),
  publishes_per_second: rate('publishes', 'messages published into the hub'),
  errors_per_second: rate('errors', 'errors of every kind'),
  joins_per_second: rate('joins', 'Realtime channel joins'),
  slow_consumer_disconnects_per_second: rate('slow_consumer_disconnects', 'connections closed for exceeding the unsent-bytes budget'),
  connections_opened_per_second: rate('connections_opened', 'connections accepted'),
  connections_rejected_per_second: rate('connections_rejected', 'connections refused by a cap or during drain'),
  delivery_latency_p50_seconds: quantile('delivery_latency', 0.5, 'publish to socket write, median'),
  delivery_latency_p90_seconds: quantile('delivery_latency', 0.9, 'publish to socket write, 90th percentile'),
  delivery_latency_p99_seconds: quantile('delivery_latency', 0.99, 'publish to socket write, 99th percentile'),
  change_feed_lag_p99_seconds: quantile('change_feed_lag', 0.99, 'database commit to dispatch, 99th percentile'),
} as const satisfies Record<string, SignalDef>;

export type SignalName = keyof typeof SIGNALS;
export const SIGNAL_NAMES = Object.keys(SIGNALS) as [SignalName, ...SignalName[]];

export function describeSignal(name: SignalName): { kind: SignalDef['kind']; help: string; aggregate?: Aggregate } {
  const def: SignalDef = SIGNALS[name];
  return def.kind === 'gauge' ? { kind: def.kind, help: def.help, aggregate: def.aggregate } : { kind: def.kind, help: def.help };
}

/**
 * The value of `name` over `window`: chronological snapshots whose first element is the
 * baseline the window starts from (for rates and quantiles) and whose last is "now".
 * Undefined when the window holds no data for the signal (too few snapshots, no
 * observations in the window, a gauge the platform cannot read).
 */
export function evaluateSignal(name: SignalName, window: readonly Snapshot[], aggregate?: Aggregate): number | undefined {
  const def: SignalDef = SIGNALS[name];
  const last = window[window.length - 1];
  if (!last) return undefined;
  if (def.kind === 'gauge') {
    // The baseline belongs to the previous window unless it is all there is.
    const inWindow = window.length > 1 ? window.slice(1) : window;
    const values = inWindow.map((s) => s.gauges[def.gauge]).filter((v): v is number => v !== undefined);
    return aggregateValues(values, aggregate ?? def.aggregate);
  }
  const first = window[0]!;
  if (window.length < 2 || last.t <= first.t) return undefined;
  if (def.kind === 'rate') return (last.counters[def.counter] - first.counters[def.counter]) / ((last.t - first.t) / 1000);
  return bucketQuantile(def.q, subtractBuckets(last.histograms[def.histogram], first.histograms[def.histogram]));
}

function aggregateValues(values: number[], aggregate: Aggregate): number | undefined {
  if (values.length === 0) return undefined;
  switch (aggregate) {
    case 'last':
      return values[values.length - 1];
    case 'avg':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'min':
      return Math.min(...values);
    case 'max':
      return Math.max(...values);
  }
}

/** `later - earlier` per bucket bound; bounds absent from `earlier` had no observations then. */
export function subtractBuckets(later: Buckets, earlier: Buckets): Buckets {
  const before = new Map(earlier);
  return later.map(([le, count]) => [le, count - (before.get(le) ?? 0)]);
}

/**
 * Prometheus' histogram_quantile: find the bucket holding rank q·total and interpolate
 * linearly between its bounds (the first bucket starts at 0). A rank in the +Inf bucket
 * reports the highest finite bound, since nothing above it is known.
 */
export function bucketQuantile(q: number, buckets: Buckets): number | undefined {
  const total = buckets[buckets.length - 1]?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lowerBound;
      const inBucket = count - lowerCount;
      return inBucket > 0 ? lowerBound + (le - lowerBound) * ((rank - lowerCount) / inBucket) : le;
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}
