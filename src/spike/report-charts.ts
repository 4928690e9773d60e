// The report's charts, computed from report.json alone (so `fanout report` can redraw
// them): connections over time and latency percentiles over time across the whole spike,
// server RSS against open connections with its fitted line and slope, each transport's
// degradation curve, and the failure run's timeline.
import { linearFit } from '../load/fit.js';
import { svgChart, type Series } from './charts.js';
import type { ScenarioRecord, SpikeReport } from './model.js';
import { bestMemoryFit } from './limits.js';

export interface Chart {
  id: string;
  title: string;
  caption: string;
  svg: string;
}

const COLORS = { sse: '#2563eb', realtime: '#16a34a', p50: '#93c5fd', fail: '#dc2626', pass: '#16a34a', invalid: '#9ca3af', extra: '#f59e0b' };

/** Seconds since the first scenario started, for a scenario's timeline row. */
function globalTime(report: SpikeReport): (s: ScenarioRecord, t: number) => number {
  const first = Math.min(...report.scenarios.map((s) => Date.parse(s.result.startedAt)));
  return (s, t) => (Date.parse(s.result.startedAt) - first) / 1000 + t;
}

export function connectionsChart(report: SpikeReport): Chart {
  const g = globalTime(report);
  const sse: [number, number][] = [];
  const rt: [number, number][] = [];
  for (const s of report.scenarios) {
    for (const row of s.result.timeline) {
      if (s.result.config.sse) sse.push([g(s, row.t), Math.max(1, row.sseOpen)]);
      if (s.result.config.realtime) rt.push([g(s, row.t), Math.max(1, row.realtimeJoined)]);
    }
  }
  return {
    id: 'connections',
    title: 'Connections over time',
    caption: 'Open SSE streams and joined Realtime users through the whole spike, one point per second (log scale; each scenario is a separate segment).',
    svg: svgChart({ title: 'Connections over time', xLabel: 'seconds since the spike started', yLabel: 'open connections (log)', yLog: true, yMin: 1, breakGapX: 2.5, series: [{ name: 'SSE streams open', color: COLORS.sse, points: sse }, { name: 'Realtime users joined', color: COLORS.realtime, points: rt }] }),
  };
}

export function latencyChart(report: SpikeReport): Chart {
  const g = globalTime(report);
  const s50: [number, number][] = [];
  const s99: [number, number][] = [];
  const r99: [number, number][] = [];
  // An INVALID run's figures are the generator's: drawn apart, as grey points no line joins.
  const invalid: [number, number][] = [];
  for (const s of report.scenarios) {
    for (const row of s.result.timeline) {
      // Publish stamps have millisecond resolution, so anything under 1 ms is drawn at 0.5 ms ("< 1 ms").
      if (!s.result.valid) {
        const worst = Math.max(row.sseLatency?.p99 ?? 0, row.realtimeLatency?.p99 ?? 0);
        if (worst > 0) invalid.push([g(s, row.t), Math.max(0.5, worst)]);
        continue;
      }
      if (row.sseLatency?.p50 != null) s50.push([g(s, row.t), Math.max(0.5, row.sseLatency.p50)]);
      if (row.sseLatency?.p99 != null) s99.push([g(s, row.t), Math.max(0.5, row.sseLatency.p99)]);
      if (row.realtimeLatency?.p99 != null) r99.push([g(s, row.t), Math.max(0.5, row.realtimeLatency.p99)]);
    }
  }
  return {
    id: 'latency',
    title: 'Latency percentiles over time',
    caption: 'Per-second percentiles from the merged HDR histograms, from the intended send time (SSE: the publisher’s `lt`; Realtime: broadcast, presence, comments). Grey points: INVALID runs (the generator could not vouch for them), drawn apart and joined to nothing. Dashed lines: the seed’s limits.',
    svg: svgChart({
      title: 'Latency percentiles over time',
      xLabel: 'seconds since the spike started',
      yLabel: 'latency, ms (log)',
      yLog: true,
      yMin: 0.5,
      breakGapX: 2.5,
      series: [
        { name: 'SSE p50', color: COLORS.p50, points: s50 },
        { name: 'SSE p99', color: COLORS.sse, points: s99 },
        { name: 'Realtime p99', color: COLORS.realtime, points: r99 },
        ...(invalid.length ? [{ name: 'INVALID runs (worst p99, not the server’s)', color: COLORS.invalid, points: invalid, scatter: true }] : []),
      ],
      hlines: [
        { y: 500, label: 'SSE limit 500 ms' },
        { y: 1000, label: 'presence limit 1 s', color: '#b45309' },
      ],
    }),
  };
}

/** The run of one transport whose RSS fit the limits use (see bestMemoryFit). */
function widestFit(report: SpikeReport, group: 'sse' | 'realtime'): ScenarioRecord | undefined {
  return bestMemoryFit(report.scenarios.filter((s) => s.result.valid), group)?.s;
}

export function rssChart(report: SpikeReport): Chart {
  const series: Series[] = [];
  const notes: string[] = [];
  for (const [group, color] of [
    ['sse', COLORS.sse],
    ['realtime', COLORS.realtime],
  ] as const) {
    const s = widestFit(report, group);
    if (!s) continue;
    const pts: [number, number][] = s.result.server.rssPoints.map((p) => [p.connections, p.rssMb]);
    const fit = linearFit(pts.map(([x, y]) => ({ x, y })));
    series.push({ name: `${group === 'sse' ? 'SSE' : 'Realtime'} (${s.id})`, color, points: pts, scatter: true });
    if (fit) {
      series.push({ name: `fit: ${Math.round(fit.slope * 1024 * 100) / 100} KB/connection, r² ${fit.r2 === null ? 'n/a' : Math.round(fit.r2 * 1000) / 1000}`, color, dashed: true, points: [[fit.xMin, fit.intercept + fit.slope * fit.xMin], [fit.xMax, fit.intercept + fit.slope * fit.xMax]] });
      notes.push(`${group}: ${Math.round(fit.slope * 1024 * 100) / 100} KB per connection (slope), ${Math.round(fit.intercept)} MB at zero (intercept), r² ${fit.r2 === null ? 'n/a' : fit.r2.toFixed(3)}, over ${fit.n} samples of ${s.id}`);
    }
  }
  return {
    id: 'rss',
    title: 'Server RSS against open connections',
    caption: `Each point is one server sample (RSS from /proc) against the connections open at that second; the dashed line is the least-squares fit, whose slope is the memory per connection. ${notes.join('; ') || 'No run varied connections enough to fit.'}`,
    svg: svgChart({ title: 'Server RSS against open connections', xLabel: 'open connections', yLabel: 'server RSS, MB', series, yFromData: true }),
  };
}

export function degradationChart(report: SpikeReport, transport: 'sse' | 'realtime'): Chart | null {
  const d = report.degradation[transport];
  if (!d || !d.steps.length) return null;
  const steps = [...d.steps].sort((a, b) => a.load - b.load);
  const valid = steps.filter((s) => s.verdict !== 'invalid');
  const invalid = steps.filter((s) => s.verdict === 'invalid');
  const color = (v: string): string => (v === 'pass' ? COLORS.pass : COLORS.fail);
  const label = transport === 'sse' ? 'SSE' : 'Realtime';
  const limit = transport === 'sse' ? 500 : 1000;
  // INVALID steps measured the generator: they stand apart at the top of the chart, and no line passes through them.
  const top = Math.max(limit * 2, ...valid.map((s) => Math.max(s.p99Ms ?? 0, s.connectP99Ms ?? 0)));
  const series: Series[] = [
    { name: transport === 'sse' ? 'delivery p99' : 'presence/broadcast p99', color: transport === 'sse' ? COLORS.sse : COLORS.realtime, points: valid.map((s) => [s.load, Math.max(0.5, s.p99Ms ?? 0.5)]), pointColors: valid.map((s) => color(s.verdict)) },
    { name: transport === 'sse' ? 'connect p99' : 'subscribe (connect + join) p99', color: COLORS.extra, points: valid.map((s) => [s.load, Math.max(0.5, s.connectP99Ms ?? 0.5)]), dashed: true },
  ];
  if (invalid.length) series.push({ name: 'INVALID step (no figure: the generator could not vouch for it)', color: COLORS.invalid, points: invalid.map((s) => [s.load, top]), scatter: true });
  return {
    id: `degradation-${transport}`,
    title: `${label} degradation curve`,
    caption: `Each ramp step held the load for ${d.holdMs / 1000} s after opening connections at ${d.openRate}/s; green passed every criterion (${d.criteria.join(', ')}), red failed one. Grey marks at the top are INVALID steps: their figures are the generator's, so they are drawn apart and no line passes through them. ${d.finding[0]!.toUpperCase()}${d.finding.slice(1)} (${d.strength === 'measured' ? 'measured' : d.strength === 'lower-bound' ? 'a lower bound' : 'not measured'}).`,
    svg: svgChart({
      title: `${label} degradation curve`,
      xLabel: `${d.unit} (log)`,
      yLabel: 'p99 latency, ms (log)',
      xLog: true,
      yLog: true,
      yMin: 0.5,
      series,
      hlines: [{ y: limit, label: `limit ${limit} ms` }],
      vlines: d.strength === 'measured' && d.lastPass !== null && d.firstFail !== null ? [{ x: d.lastPass, label: `passed ${d.lastPass}`, color: COLORS.pass }, { x: d.firstFail, label: `failed ${d.firstFail}`, color: COLORS.fail }] : d.lastPass !== null ? [{ x: d.lastPass, label: `≥ ${d.lastPass} (lower bound)`, color: COLORS.invalid }] : [],
    }),
  };
}

export function faultChart(report: SpikeReport): Chart | null {
  if ('skipped' in report.fault) return null;
  const f = report.fault;
  const s = report.scenarios.find((x) => x.id === f.scenarioId);
  if (!s) return null;
  const p99: [number, number][] = s.result.timeline.filter((r) => r.sseLatency?.p99 != null).map((r) => [r.t, r.sseLatency!.p99!]);
  const comments: [number, number][] = s.result.timeline.map((r) => [r.t, r.commentsReceived]);
  return {
    id: 'fault',
    title: 'Failure run: the database stopped and restarted',
    caption: 'SSE p99 per second (the side that must not notice) and comment changes delivered per second (the side that depends on the database). Dashed lines: fault injected and removed.',
    svg: svgChart({
      title: 'Failure run: SSE p99 (ms) and comment deliveries per second',
      xLabel: 'seconds since the run started',
      yLabel: 'ms  /  deliveries per second',
      series: [
        { name: 'SSE p99 (ms)', color: COLORS.sse, points: p99 },
        { name: 'comment deliveries /s', color: COLORS.realtime, points: comments },
      ],
      vlines: s.result.faults.map((x) => ({ x: x.atS, label: x.label.split(':')[0]!, color: '#b91c1c' })),
    }),
  };
}

export function allCharts(report: SpikeReport): Chart[] {
  const out: (Chart | null)[] = [connectionsChart(report), latencyChart(report), rssChart(report), degradationChart(report, 'sse'), degradationChart(report, 'realtime'), faultChart(report)];
  return out.filter((c): c is Chart => c !== null);
}
