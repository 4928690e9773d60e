// Fills the seed's ScalabilityLimits and PerformanceBenchmarks from the spike's runs.
// Only VALID runs count (a run where the generator saturated measured the generator).
// Each figure names its basis: the scenario it was read from, or the rule that derived it.
import { linearFit, type LinearFit } from '../load/fit.js';
import { sseUserLatency, type RunResult } from '../load/result.js';
import type { Benchmark, DegradationRecord, Figure, PerformanceBenchmarks, ScalabilityLimits, ScenarioCategory, ScenarioRecord } from './model.js';

/** Share of the highest passing load recommended as an operating limit (headroom for bursts and noisy neighbours). */
export const RECOMMENDED_SHARE = 0.7;
/** Channel size is recommended while presence p99 stays within this share of the seed's 1 s budget. */
export const PRESENCE_HEADROOM_MS = 500;

const round = (v: number, d = 3): number => Math.round(v * 10 ** d) / 10 ** d;

export function valid(scenarios: readonly ScenarioRecord[], ...cats: ScenarioCategory[]): ScenarioRecord[] {
  return scenarios.filter((s) => s.result.valid && (cats.length === 0 || cats.includes(s.category)));
}

function pick<T>(list: readonly ScenarioRecord[], value: (r: RunResult) => T | null | undefined, better: (a: T, b: T) => boolean): { s: ScenarioRecord; v: T } | null {
  let best: { s: ScenarioRecord; v: T } | null = null;
  for (const s of list) {
    const v = value(s.result);
    if (v === null || v === undefined) continue;
    if (!best || better(v, best.v)) best = { s, v };
  }
  return best;
}

const max = <T extends number>(a: T, b: T): boolean => a > b;
const min = <T extends number>(a: T, b: T): boolean => a < b;

function figure(found: { s: ScenarioRecord; v: number } | null, unit: string, what: string): Figure {
  return found ? { value: round(found.v), unit, basis: `${what} in ${found.s.id} (${found.s.title})` } : { value: null, unit, basis: `no valid run measured ${what}` };
}

/** A slope per 100 connections of steady CPU against connections, over several runs of one transport. */
export function cpuSlope(list: readonly ScenarioRecord[], group: 'sse' | 'realtime'): { fit: LinearFit | null; points: { x: number; y: number }[] } {
  const points = list
    .filter((s) => s.result.groups[group] && s.result.server.steadyCpuPct !== null && !s.result.groups[group === 'sse' ? 'realtime' : 'sse'])
    .map((s) => ({ x: s.result.groups[group]!.peakOpen, y: s.result.server.steadyCpuPct! }));
  return { fit: linearFit(points), points };
}

/**
 * Memory per connection from the run whose RSS fit is trustworthy (r² ≥ 0.5, positive
 * slope) and spans the most connections — the ramp's largest step, usually. Without one,
 * the best-fitting run is used and its basis says the fit is poor.
 */
export function bestMemoryFit(list: readonly ScenarioRecord[], group: 'sse' | 'realtime'): { s: ScenarioRecord; kb: number; r2: number | null; poor: boolean } | null {
  const fits = list
    .filter((s) => s.result.server.memoryPerConnection && s.result.groups[group] && !s.result.groups[group === 'sse' ? 'realtime' : 'sse'])
    .map((s) => ({ s, m: s.result.server.memoryPerConnection! }));
  const good = fits.filter((f) => (f.m.r2 ?? 0) >= 0.5 && f.m.slope > 0).sort((a, b) => b.m.xMax - b.m.xMin - (a.m.xMax - a.m.xMin));
  const pick = good[0] ?? [...fits].sort((a, b) => (b.m.r2 ?? 0) - (a.m.r2 ?? 0))[0];
  return pick ? { s: pick.s, kb: pick.m.kbPerConnection, r2: pick.m.r2, poor: !good.length } : null;
}

function degradationFigures(d: DegradationRecord | undefined, unit: string): { point: Figure; recommended: Figure } {
  if (!d) return { point: { value: null, unit, basis: 'degradation ramp not run' }, recommended: { value: null, unit, basis: 'degradation ramp not run' } };
  const failed = d.steps.find((s) => s.load === d.firstFail);
  const point: Figure =
    d.firstFail !== null
      ? { value: d.firstFail, unit, basis: `first ramp step that failed a criterion (${failed?.failures.join('; ') || 'see ramp'})` }
      : { value: null, unit, basis: d.stoppedBy === 'generator-limit' ? `not reached: the generator saturated after ${d.lastPass ?? 0} ${unit} passed` : `not reached: every step up to ${d.lastPass ?? d.max} ${unit} passed` };
  const recommended: Figure =
    d.lastPass !== null
      ? { value: Math.floor(d.lastPass * RECOMMENDED_SHARE), unit, basis: `${RECOMMENDED_SHARE * 100}% of ${d.lastPass}, the highest load that met every criterion` }
      : { value: null, unit, basis: 'no ramp step passed' };
  return { point, recommended };
}

export function computeLimits(scenarios: readonly ScenarioRecord[], degradation: { sse?: DegradationRecord; realtime?: DegradationRecord }, scalingStrategy: string): ScalabilityLimits {
  const sseRuns = valid(scenarios, 'sse', 'ramp-sse', 'hybrid', 'soak', 'fault');
  const rtRuns = valid(scenarios, 'realtime', 'ramp-realtime', 'hybrid', 'soak');
  const sseDeg = degradationFigures(degradation.sse, 'connections');
  const rtDeg = degradationFigures(degradation.realtime, 'users');
  const allJoined = (r: RunResult): boolean => !!r.groups.realtime && r.groups.realtime.connectSuccessPct >= 100;
  const channels = pick(rtRuns, (r) => (allJoined(r) ? (r.config.realtime?.projects ?? null) : null), max);
  const rtPassing = rtRuns.filter((s) => s.result.passed);
  const usersPerChannel = pick(rtPassing, (r) => r.config.realtime?.usersPerProject ?? null, max);
  const comfortable = pick(
    rtPassing,
    (r) => {
      const g = r.groups.realtime;
      const presence = g?.latency.presence?.p99;
      if (!g || presence === undefined || presence === null || presence > PRESENCE_HEADROOM_MS) return null;
      if ((g.deliveryTotal.reliabilityPct ?? 100) < 99.9) return null;
      return r.config.realtime?.usersPerProject ?? null;
    },
    max,
  );
  const hybridTotal = pick(
    valid(scenarios, 'hybrid', 'soak').filter((s) => s.result.passed),
    (r) => (r.groups.sse?.peakOpen ?? 0) + (r.groups.realtime?.peakOpen ?? 0),
    max,
  );
  const sseMem = bestMemoryFit(valid(scenarios, 'ramp-sse', 'sse'), 'sse');
  const rtMem = bestMemoryFit(valid(scenarios, 'ramp-realtime', 'realtime'), 'realtime');
  const sseCpu = cpuSlope(valid(scenarios, 'sse', 'ramp-sse'), 'sse');
  const rtCpu = cpuSlope(valid(scenarios, 'realtime', 'ramp-realtime'), 'realtime');
  const baseRss = pick(valid(scenarios), (r) => r.server.rssStartMb, min);
  const bandwidth = pick(valid(scenarios, 'sse', 'realtime', 'hybrid'), (r) => r.metrics['bandwidth_per_connection_kbps'] ?? null, max);
  const memFigure = (m: ReturnType<typeof bestMemoryFit>, what: string): Figure =>
    m
      ? { value: round(m.kb, 2), unit: 'KB', basis: `slope of server RSS against open ${what} in ${m.s.id} (r² ${m.r2 === null ? 'n/a' : round(m.r2, 3)})${m.poor ? ' — a POOR fit (no run gave r² ≥ 0.5 with a positive slope): RSS moved with garbage collection more than with connections' : ''}` }
      : { value: null, unit: 'KB', basis: `no run varied ${what} enough to fit a slope` };
  const cpuFigure = (c: ReturnType<typeof cpuSlope>, what: string): Figure =>
    c.fit ? { value: round(Math.max(0, c.fit.slope * 100), 3), unit: '% of one core', basis: `slope of steady server CPU against ${what} over ${c.fit.n} runs (${c.fit.xMin}–${c.fit.xMax}), ×100` } : { value: null, unit: '% of one core', basis: `fewer than two ${what} runs with CPU samples` };

  return {
    sse: {
      maxConcurrentConnections: figure(
        pick(sseRuns, (r) => (r.groups.sse && r.groups.sse.connectSuccessPct >= 100 ? r.groups.sse.peakOpen : null), max),
        'connections',
        'most SSE connections held open with every planned connection established',
      ),
      recommendedLimit: sseDeg.recommended,
      performanceDegradationPoint: sseDeg.point,
    },
    supabaseRealtime: {
      maxChannels: figure(channels, 'channels', 'most channels with every user joined'),
      maxUsersPerChannel: usersPerChannel
        ? { value: usersPerChannel.v, unit: 'users', basis: `largest channel in a run that met every criterion (${usersPerChannel.s.id}); a lower bound — larger channels were not tried unless the ramp did` }
        : { value: null, unit: 'users', basis: 'no Realtime run met every criterion' },
      recommendedChannelSize: comfortable
        ? { value: comfortable.v, unit: 'users', basis: `largest passing channel whose presence p99 stayed under ${PRESENCE_HEADROOM_MS} ms (half the seed's 1 s budget) with ≥ 99.9% reliability (${comfortable.s.id})` }
        : { value: null, unit: 'users', basis: `no passing channel kept presence p99 under ${PRESENCE_HEADROOM_MS} ms` },
      performanceDegradationPoint: rtDeg.point,
      recommendedLimit: rtDeg.recommended,
    },
    hybrid: {
      maxTotalConnections: hybridTotal
        ? { value: hybridTotal.v, unit: 'connections', basis: `SSE + Realtime connections held together in ${hybridTotal.s.id}, which met every criterion (a lower bound; see the ramps for each transport alone)` }
        : { value: null, unit: 'connections', basis: 'no hybrid run met every criterion' },
      resourceUsageProfile: {
        sseMemoryPerConnectionKb: memFigure(sseMem, 'SSE connections'),
        realtimeMemoryPerConnectionKb: memFigure(rtMem, 'Realtime users'),
        cpuPer100SseConnectionsPct: cpuFigure(sseCpu, 'SSE connections'),
        cpuPer100RealtimeConnectionsPct: cpuFigure(rtCpu, 'Realtime users'),
        baseRssMb: figure(baseRss, 'MB', 'server RSS before any connection'),
        bandwidthPerConnectionKBps: figure(bandwidth, 'KB/s', 'highest bandwidth per connection'),
      },
      scalingStrategy,
    },
  };
}

function bench(found: { s: ScenarioRecord; v: number } | null, unit: string, target: string, ok: (v: number) => boolean, what: string): Benchmark {
  if (!found) return { value: null, unit, target, pass: null, basis: `no valid run measured ${what}` };
  return { value: round(found.v), unit, target, pass: ok(found.v), basis: `${what}: ${found.s.id} (${found.s.title})` };
}

export function computeBenchmarks(scenarios: readonly ScenarioRecord[], limits: ScalabilityLimits): PerformanceBenchmarks {
  const sseMatrix = valid(scenarios, 'sse');
  const rtMatrix = valid(scenarios, 'realtime');
  const soak = valid(scenarios, 'soak');
  const stabilityRuns = soak.length ? soak : sseMatrix;
  const profile = limits.hybrid.resourceUsageProfile;
  const memKb = [profile.sseMemoryPerConnectionKb, profile.realtimeMemoryPerConnectionKb].filter((f) => f.value !== null).sort((a, b) => b.value! - a.value!)[0];
  const cpu = [profile.cpuPer100SseConnectionsPct, profile.cpuPer100RealtimeConnectionsPct].filter((f) => f.value !== null).sort((a, b) => b.value! - a.value!)[0];
  const bw = profile.bandwidthPerConnectionKBps;
  return {
    sse: {
      connectionEstablishmentTime: bench(pick(sseMatrix, (r) => r.groups.sse?.connect.p99, max), 'ms', '< 2 s', (v) => v < 2000, 'worst connect p99 across the SSE matrix'),
      messageDeliveryLatency: bench(pick(sseMatrix, (r) => sseUserLatency(r.groups.sse)?.p99, max), 'ms', '< 500 ms', (v) => v < 500, 'worst delivery p99 across the SSE matrix'),
      connectionStability: bench(pick(stabilityRuns, (r) => r.groups.sse?.stabilityPct, min), '%', '> 99%', (v) => v > 99, soak.length ? 'stability over the soak run' : 'lowest stability across the SSE matrix (no soak run: pass --soak 600 for the seed\'s 10-minute test)'),
    },
    supabaseRealtime: {
      presenceUpdateLatency: bench(pick(rtMatrix, (r) => r.groups.realtime?.latency.presence?.p99, max), 'ms', '< 1 s', (v) => v < 1000, 'worst presence p99 across the Realtime matrix'),
      messageDeliveryReliability: bench(pick(rtMatrix, (r) => r.groups.realtime?.deliveryTotal.reliabilityPct, min), '%', '> 99.9%', (v) => v >= 99.9, 'lowest reliability across the Realtime matrix'),
      channelSubscriptionTime: bench(pick(rtMatrix, (r) => r.groups.realtime?.subscribe?.p99, max), 'ms', '< 1 s', (v) => v < 1000, 'worst subscription (connect + join) p99 across the Realtime matrix'),
    },
    resourceUsage: {
      memoryPerConnection: memKb ? { value: memKb.value, unit: 'KB', target: '< 10 MB', pass: memKb.value! < 10 * 1024, basis: memKb.basis } : { value: null, unit: 'KB', target: '< 10 MB', pass: null, basis: 'not measured' },
      cpuUsageIncrease: cpu ? { value: cpu.value, unit: '% per 100 connections', target: '< 5% per 100 connections', pass: cpu.value! < 5, basis: cpu.basis } : { value: null, unit: '% per 100 connections', target: '< 5% per 100 connections', pass: null, basis: 'not measured' },
      networkBandwidth: { value: bw.value, unit: 'KB/s per connection', target: '< 1 KB/s per connection', pass: bw.value === null ? null : bw.value < 1, basis: bw.basis },
    },
  };
}
