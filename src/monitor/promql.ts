// The monitor's signals (signals.ts) written as PromQL over the series `/metrics` exposes,
// so the same alert rules can run in Prometheus (`fanout alerts --prometheus`) and the
// Grafana dashboard in deploy/ plots what the built-in dashboard plots. Each expression
// keeps `job` and `instance`, so one gateway's trouble is one alert, not a cluster average.
import type { AlertRule } from './alert-rules.js';
import { SIGNALS, type Aggregate, type SignalName } from './signals.js';

const BY = 'job, instance';

/** Prometheus needs at least two scrapes inside a rate window; 1m covers scrape intervals up to 30 s. */
export const MIN_RATE_WINDOW_MS = 60_000;

/** The instantaneous PromQL of each gauge signal. */
const GAUGE_PROMQL: Record<string, string> = {
  connections: `sum by (${BY}) (fanout_connections)`,
  connections_sse: `sum by (${BY}) (fanout_connections{transport="sse"})`,
  connections_poll: `sum by (${BY}) (fanout_connections{transport="poll"})`,
  connections_ws: `sum by (${BY}) (fanout_connections{transport="ws"})`,
  connections_dashboard: `sum by (${BY}) (fanout_connections{transport="dashboard"})`,
  channels: `sum by (${BY}) (fanout_realtime_channels)`,
  presence_members: `sum by (${BY}) (fanout_presence_members)`,
  rss_bytes: `sum by (${BY}) (process_resident_memory_bytes)`,
  heap_used_bytes: `sum by (${BY}) (nodejs_heap_size_used_bytes)`,
  open_files: `sum by (${BY}) (process_open_fds)`,
  max_open_files: `sum by (${BY}) (process_max_fds)`,
  open_files_ratio: `sum by (${BY}) (process_open_fds) / sum by (${BY}) (process_max_fds)`,
  event_loop_lag_p99_seconds: `sum by (${BY}) (fanout_event_loop_lag_p99_seconds)`,
  event_loop_lag_max_seconds: `sum by (${BY}) (fanout_event_loop_lag_max_seconds)`,
  change_feed_lag_last_seconds: `sum by (${BY}) (fanout_change_feed_lag_last_seconds)`,
  // The worst replication slot (WAL capture), as the gateway's own sampler takes it.
  change_slot_lag_bytes: `max by (${BY}) (fanout_changes_slot_lag_bytes)`,
  change_slot_lag_seconds: `max by (${BY}) (fanout_changes_slot_lag_seconds)`,
};

/** The counter series (and label filter) behind each rate signal's counter. */
const COUNTER_SERIES: Record<string, string> = {
  cpu_seconds: 'process_cpu_seconds_total',
  messages_in: 'fanout_messages_total{direction="in"}',
  messages_out: 'fanout_messages_total{direction="out"}',
  bytes_in: 'fanout_bytes_total{direction="in"}',
  bytes_out: 'fanout_bytes_total{direction="out"}',
  publishes: 'fanout_publishes_total',
  errors: 'fanout_errors_total',
  joins: 'fanout_realtime_joins_total',
  slow_consumer_disconnects: 'fanout_slow_consumer_disconnects_total',
  connections_opened: 'fanout_connections_opened_total',
  connections_rejected: 'fanout_connections_rejected_total',
};

const HISTOGRAM_SERIES: Record<string, string> = {
  delivery_latency: 'fanout_delivery_latency_seconds_bucket',
  change_feed_lag: 'fanout_change_feed_lag_seconds_bucket',
};

/** `90s`, `1m`, `1h` — Prometheus duration syntax for a whole number of seconds. */
export function promDuration(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

/**
 * PromQL for `signal` over `windowMs`, as the monitor evaluates it: a gauge aggregated over
 * the window (last value, or avg/min/max_over_time), a rate, or a histogram quantile.
 */
export function signalPromql(signal: SignalName, windowMs: number, aggregate?: Aggregate): string {
  const def = SIGNALS[signal];
  if (def.kind === 'gauge') {
    const expr = GAUGE_PROMQL[def.gauge];
    if (!expr) throw new Error(`no PromQL for gauge ${def.gauge}`);
    const agg = aggregate ?? def.aggregate;
    return agg === 'last' ? expr : `${agg}_over_time((${expr})[${promDuration(windowMs)}:])`;
  }
  const range = promDuration(Math.max(windowMs, MIN_RATE_WINDOW_MS));
  if (def.kind === 'rate') return `sum by (${BY}) (rate(${COUNTER_SERIES[def.counter]}[${range}]))`;
  return `histogram_quantile(${def.q}, sum by (${BY}, le) (rate(${HISTOGRAM_SERIES[def.histogram]}[${range}])))`;
}

/** Every metric name the PromQL above reads, for checking against a real `/metrics` scrape. */
export function promqlMetricNames(): string[] {
  const names = [...Object.values(GAUGE_PROMQL), ...Object.values(COUNTER_SERIES), ...Object.values(HISTOGRAM_SERIES)].flatMap((e) =>
    [...e.matchAll(/\b((?:fanout|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!),
  );
  return [...new Set(names)].sort();
}

/** `sse_connections_high` → `FanoutSseConnectionsHigh`, Prometheus' convention for alert names. */
export function alertName(rule: string): string {
  return 'Fanout' + rule.split(/[^A-Za-z0-9]+/).map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
}

export interface PrometheusAlert {
  alert: string;
  expr: string;
  for: string;
  keep_firing_for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/**
 * One Fanout rule as a Prometheus alerting rule. Fanout's hysteresis (fire above the
 * threshold, resolve only back past `resolve`) becomes "above the threshold, or above the
 * resolve level while this alert is already firing"; its `resolveFor` becomes keep_firing_for.
 */
export function prometheusAlert(rule: AlertRule): PrometheusAlert {
  const value = signalPromql(rule.signal, rule.windowMs, rule.aggregate);
  const name = alertName(rule.name);
  const fires = `(${value}) ${rule.op} ${rule.threshold}`;
  const expr =
    rule.resolve === rule.threshold
      ? fires
      : `${fires}\nor\n((${value}) ${rule.op} ${rule.resolve} and on (${BY}) group by (${BY}) (ALERTS{alertname="${name}", alertstate="firing"}))`;
  return {
    alert: name,
    expr,
    for: rule.forMs > 0 ? promDuration(rule.forMs) : '0s',
    ...(rule.resolveForMs > 0 ? { keep_firing_for: promDuration(rule.resolveForMs) } : {}),
    labels: { severity: rule.severity, fanout_rule: rule.name },
    annotations: {
      summary: rule.description,
      description: `${rule.name} on {{ $labels.instance }}: ${rule.signal} is {{ $value }} (fires ${rule.op} ${rule.threshold}, resolves past ${rule.resolve})`,
    },
  };
}

/** A Prometheus rule file (YAML) with one group holding every rule. Other strings are JSON-quoted, which YAML reads as double-quoted scalars. */
export function prometheusRuleFile(rules: readonly AlertRule[], group = 'fanout'): string {
  const q = (s: string) => JSON.stringify(s);
  const lines = ['# Fanout alert rules for Prometheus, generated by `fanout alerts --prometheus`.', '# Check with: promtool check rules <this file>', 'groups:', `  - name: ${q(group)}`, '    rules:'];
  if (rules.length === 0) lines[lines.length - 1] = '    rules: []';
  for (const rule of rules) {
    const a = prometheusAlert(rule);
    // The expression as a literal block, so it reads as PromQL, not as an escaped string.
    lines.push(`      - alert: ${q(a.alert)}`, '        expr: |-', ...a.expr.split('\n').map((l) => `          ${l}`), `        for: ${a.for}`);
    if (a.keep_firing_for) lines.push(`        keep_firing_for: ${a.keep_firing_for}`);
    lines.push('        labels:', ...Object.entries(a.labels).map(([k, v]) => `          ${k}: ${q(v)}`));
    lines.push('        annotations:', ...Object.entries(a.annotations).map(([k, v]) => `          ${k}: ${q(v)}`));
  }
  return lines.join('\n') + '\n';
}
