// What the load cost the server, from the samples taken through the run: idle and
// steady CPU, CPU per 100 connections, RSS, and memory per connection as a slope fitted
// against open connections, judged for whether it measures anything at all.
import { linearFit, type LinearFit } from './fit.js';
import { MB, mean, round } from './numbers.js';
import type { Bucket } from './aggregate.js';
import type { RunInputs } from './result.js';

export interface ServerResult {
  sources: string[];
  problems: string[];
  idleCpuPct: number | null;
  steadyCpuPct: number | null;
  cpuPer100ConnectionsPct: number | null;
  rssStartMb: number | null;
  rssPeakMb: number | null;
  rssEndMb: number | null;
  /** The fit of RSS against open connections, whether or not it is trustworthy (see memoryMeasured). */
  memoryPerConnection: (LinearFit & { kbPerConnection: number }) | null;
  /**
   * Whether the fit measures memory per connection: r² ≥ MIN_MEMORY_R2, a positive slope and
   * RSS that actually grew. Otherwise the figure is "not measured" (memoryNotMeasured says
   * why) and no threshold passes on it.
   */
  memoryMeasured: boolean;
  memoryNotMeasured: string | null;
  /** (connections, RSS MB) points the slope was fitted on. */
  rssPoints: { connections: number; rssMb: number }[];
  eventLoopLagP99MaxMs: number | null;
  openFilesMax: number | null;
  machineCpuMeanPct: number | null;
}

/** Below this r² the RSS samples did not follow the connection count: the slope is noise (GC, allocator). */
export const MIN_MEMORY_R2 = 0.5;
/** RSS must rise at least this much over the fitted samples; less is within what RSS sampling resolves (page granularity, GC). */
export const MIN_MEMORY_RISE_MB = 1;
/**
 * Connections must vary over at least this many: a gateway's RSS wanders by megabytes (JIT,
 * GC, buffers) while a connection costs kilobytes, so a slope over a few dozen is noise.
 */
export const MIN_MEMORY_CONNECTION_SPAN = 200;
/** A slope through fewer server samples than this is a line through a handful of GC moments. */
export const MIN_MEMORY_SAMPLES = 5;

/**
 * Whether an RSS-against-connections fit is a measurement of memory per connection, and if
 * not, why — a slope with r² near 0, or from a process that did not grow, is not one.
 */
export function judgeMemoryFit(fit: LinearFit | null, rssMb: readonly number[]): { measured: boolean; reason: string | null } {
  if (!fit) return { measured: false, reason: 'connections did not vary while the server was sampled, so no slope can be fitted' };
  if (fit.n < MIN_MEMORY_SAMPLES) return { measured: false, reason: `only ${fit.n} server samples (under ${MIN_MEMORY_SAMPLES}): too few to fit a slope on` };
  if (fit.xMax - fit.xMin < MIN_MEMORY_CONNECTION_SPAN) return { measured: false, reason: `connections varied over only ${fit.xMax - fit.xMin} (under ${MIN_MEMORY_CONNECTION_SPAN}): per-connection memory is lost in the RSS noise at this scale` };
  const rise = rssMb.length ? Math.max(...rssMb) - Math.min(...rssMb) : 0;
  if (fit.slope <= 0) return { measured: false, reason: `RSS did not grow with connections (slope ${round(fit.slope * 1024, 3)} KB per connection)` };
  if (rise < MIN_MEMORY_RISE_MB) return { measured: false, reason: `RSS moved by only ${round(rise, 2)} MB over the run (under ${MIN_MEMORY_RISE_MB} MB): too little growth to attribute to connections` };
  if (fit.r2 === null || fit.r2 < MIN_MEMORY_R2) return { measured: false, reason: `RSS did not follow the connection count (r² ${fit.r2 === null ? 'n/a' : round(fit.r2, 3)} < ${MIN_MEMORY_R2}): garbage collection moved it more than connections did` };
  return { measured: true, reason: null };
}

export function serverResult(inputs: RunInputs, steady: Bucket[]): ServerResult {
  const { samples, t0, endAt, agg } = inputs;
  const before = samples.filter((s) => s.t < t0 && s.cpuPct !== null);
  const steadyFrom = t0 + (steady[0]?.second ?? 0) * 1000;
  const during = samples.filter((s) => s.t >= steadyFrom && s.t <= endAt);
  const idleCpu = mean(before.map((s) => s.cpuPct!));
  const steadyCpu = mean(during.filter((s) => s.cpuPct !== null).map((s) => s.cpuPct!));
  const steadyConns = mean(steady.map((b) => openConnections(b.gauges)));
  const buckets = [...agg.buckets.values()].sort((a, b) => a.second - b.second);
  const connsAt = (t: number): number => {
    if (t < t0) return 0;
    const s = Math.floor((t - t0) / 1000);
    let best: Bucket | undefined;
    for (const b of buckets) if (b.second <= s) best = b;
    return best ? openConnections(best.gauges) : 0;
  };
  const rssPoints = samples.filter((s) => s.rssBytes !== null && s.t <= endAt).map((s) => ({ connections: connsAt(s.t), rssMb: round(s.rssBytes! / MB, 3) }));
  const fit = linearFit(rssPoints.map((p) => ({ x: p.connections, y: p.rssMb })));
  const rss = samples.filter((s) => s.rssBytes !== null && s.t <= endAt).map((s) => s.rssBytes! / MB);
  const memory = judgeMemoryFit(fit, rss);
  const lags = samples.filter((s) => s.eventLoopLagP99Ms !== null && s.t >= t0).map((s) => s.eventLoopLagP99Ms!);
  const fds = samples.filter((s) => s.openFiles !== null).map((s) => s.openFiles!);
  const machine = samples.filter((s) => s.machineCpuPct !== null && s.t >= t0).map((s) => s.machineCpuPct!);
  return {
    sources: inputs.samplerSources,
    problems: inputs.samplerProblems,
    idleCpuPct: idleCpu === null ? null : round(idleCpu, 2),
    steadyCpuPct: steadyCpu === null ? null : round(steadyCpu, 2),
    cpuPer100ConnectionsPct: steadyCpu !== null && steadyConns ? round((Math.max(0, steadyCpu - (idleCpu ?? 0)) / steadyConns) * 100, 3) : null,
    rssStartMb: rss.length ? round(rss[0]!, 2) : null,
    rssPeakMb: rss.length ? round(Math.max(...rss), 2) : null,
    rssEndMb: rss.length ? round(rss[rss.length - 1]!, 2) : null,
    memoryPerConnection: fit ? { ...fit, slope: fit.slope, kbPerConnection: round(fit.slope * 1024, 3) } : null,
    memoryMeasured: memory.measured,
    memoryNotMeasured: memory.reason,
    rssPoints,
    eventLoopLagP99MaxMs: lags.length ? round(Math.max(...lags), 2) : null,
    openFilesMax: fds.length ? Math.max(...fds) : null,
    machineCpuMeanPct: machine.length ? round(mean(machine)!, 1) : null,
  };
}


function openConnections(gauges: Record<string, number>): number {
  return (gauges['sse.open'] ?? 0) + (gauges['realtime.open'] ?? 0);
}
