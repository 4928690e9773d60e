// Fills the seed's ScalabilityLimits and PerformanceBenchmarks from the spike's runs.
// Only VALID runs count (a run where the generator saturated measured the generator).
// Each figure names its basis: the scenario it was read from, or the rule that derived it.
import { linearFit, type LinearFit } from '../load/fit.js';
import { sseUserLatency, type RunResult } from '../load/result.js';
import type { Benchmark, DegradationRecord, Figure, PerformanceBenchmarks, ScalabilityLimits, ScenarioCategory, ScenarioRecord } from './model.js';

/** Share of the highest passing load recommended as an operating limit (headroom for bursts and noisy neighbours). */
export const RECOMMENDED_SHARE = 0.7;
/** A CPU-per-connection slope needs this many runs and this r² to be a measurement. */
export const MIN_CPU_RUNS = 3;
export const MIN_CPU_R2 = 0.5;
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
 * Memory per connection from the run whose RSS fit is a measurement (r² ≥ 0.5, a positive
 * slope, RSS that grew, connections varying over hundreds — see judgeMemoryFit) and spans
 * the most connections: the ramp's largest step, usually. Without one it is not measured;
 * a poor fit is never reported as a value.
 */
export function bestMemoryFit(list: readonly ScenarioRecord[], group: 'sse' | 'realtime'): { s: ScenarioRecord; kb: number; r2: number | null } | null {
  const fits = list
    .filter((s) => s.result.server.memoryMeasured && s.result.server.memoryPerConnection && s.result.groups[group] && !s.result.groups[group === 'sse' ? 'realtime' : 'sse'])
    .map((s) => ({ s, m: s.result.server.memoryPerConnection! }))
    .sort((a, b) => b.m.xMax - b.m.xMin - (a.m.xMax - a.m.xMin));
  const best = fits[0];
  return best ? { s: best.s, kb: best.m.kbPerConnection, r2: best.m.r2 } : null;
}

/** Why no run measured memory per connection (the reason of the run that came closest). */
function memoryNotMeasured(list: readonly ScenarioRecord[], group: 'sse' | 'realtime', what: string): string {
  const widest = list
    .filter((s) => s.result.groups[group] && !s.result.groups[group === 'sse' ? 'realtime' : 'sse'] && s.result.server.memoryPerConnection)
    .sort((a, b) => b.result.server.memoryPerConnection!.xMax - a.result.server.memoryPerConnection!.xMax)[0];
  return widest ? `not measured: no run gave a trustworthy slope of RSS against ${what}; the widest (${widest.id}): ${widest.result.server.memoryNotMeasured}` : `not measured: no run sampled the server's RSS against ${what}`;
}

/**
 * A ramp's figures by their strength: the degradation point only when bracketed (a valid
 * pass below, a valid fail above); the capacity (highest passing load) and the operating
 * limit (RECOMMENDED_SHARE of it) are measured when bracketed, lower bounds otherwise.
 */
export function degradationFigures(d: DegradationRecord | undefined, unit: string): { point: Figure; capacity: Figure; recommended: Figure } {
  const none = (basis: string): Figure => ({ value: null, unit, basis, strength: 'not-measured' });
  if (!d) return { point: none('degradation ramp not run'), capacity: none('degradation ramp not run'), recommended: none('degradation ramp not run') };
  const failed = d.steps.find((s) => s.load === d.firstFail);
  const bracket: [number, number] | undefined = d.strength === 'measured' && d.lastPass !== null && d.firstFail !== null ? [d.lastPass, d.firstFail] : undefined;
  const point: Figure =
    d.strength === 'measured' && d.firstFail !== null
      ? { value: d.firstFail, unit, basis: `${d.finding}; the failing step: ${failed?.failures.join('; ') || 'see the ramp'}`, strength: 'measured', ...(bracket ? { bracket } : {}) }
      : none(`not reached — ${d.finding}`);
  if (d.lastPass === null) return { point, capacity: none(d.finding), recommended: none('no ramp step passed') };
  const strength = d.strength === 'measured' ? 'measured' : 'lower-bound';
  const capacity: Figure = { value: d.lastPass, unit, basis: strength === 'measured' ? `highest load that met every criterion; ${d.finding}` : `a LOWER BOUND: ${d.finding}`, strength, ...(bracket ? { bracket } : {}) };
  const recommended: Figure = {
    value: Math.floor(d.lastPass * RECOMMENDED_SHARE),
    unit,
    basis: strength === 'measured' ? `${RECOMMENDED_SHARE * 100}% of ${d.lastPass}, the highest load that met every criterion below the degradation` : `at least ${RECOMMENDED_SHARE * 100}% of ${d.lastPass} — a floor, not a cap: the ramp never found the gateway's limit (${d.finding})`,
    strength,
  };
  return { point, capacity, recommended };
}

/** A figure read from valid runs that is a lower bound by nature (the largest load tried, not a limit found). */
function atLeast(found: { s: ScenarioRecord; v: number } | null, unit: string, what: string): Figure {
  return found ? { value: found.v, unit, basis: `${what} in ${found.s.id}; a lower bound — larger was not tried or did not fail`, strength: 'lower-bound' } : { value: null, unit, basis: `no valid run measured ${what}`, strength: 'not-measured' };
}

export function computeLimits(scenarios: readonly ScenarioRecord[], degradation: { sse?: DegradationRecord; realtime?: DegradationRecord }, scalingStrategy: string): ScalabilityLimits {
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
  const sseMemRuns = valid(scenarios, 'ramp-sse', 'sse');
  const rtMemRuns = valid(scenarios, 'ramp-realtime', 'realtime');
  const sseMem = bestMemoryFit(sseMemRuns, 'sse');
  const rtMem = bestMemoryFit(rtMemRuns, 'realtime');
  const sseCpu = cpuSlope(valid(scenarios, 'sse', 'ramp-sse'), 'sse');
  const rtCpu = cpuSlope(valid(scenarios, 'realtime', 'ramp-realtime'), 'realtime');
  const baseRss = pick(valid(scenarios), (r) => r.server.rssStartMb, min);
  // The seed judges networkBandwidth at its own SSE workload: its messageFrequency (1 message/s per connection in the SSE scenarios).
  const sseMatrix = valid(scenarios, 'sse');
  const sseBandwidth = pick(sseMatrix, (r) => r.groups.sse?.bandwidthPerConnectionKBps ?? null, max);
  const sseWire = pick(sseMatrix, (r) => r.groups.sse?.perMessage.wireBytes ?? null, max);
  const ssePayload = sseWire ? sseWire.s.result.groups.sse?.perMessage.payloadBytes ?? null : null;
  const rtBandwidth = pick(valid(scenarios, 'realtime'), (r) => r.groups.realtime?.bandwidthPerConnectionKBps ?? null, max);
  const rtWire = rtBandwidth ? rtBandwidth.s.result.groups.realtime?.perMessage.wireBytes ?? null : null;
  const memFigure = (m: ReturnType<typeof bestMemoryFit>, list: readonly ScenarioRecord[], group: 'sse' | 'realtime', what: string): Figure =>
    m
      ? { value: round(m.kb, 2), unit: 'KB', basis: `slope of server RSS against open ${what} in ${m.s.id} (r² ${m.r2 === null ? 'n/a' : round(m.r2, 3)})`, strength: 'measured' }
      : { value: null, unit: 'KB', basis: memoryNotMeasured(list, group, what), strength: 'not-measured' };
  // A CPU slope is a measurement only over enough runs that CPU actually followed the load.
  const cpuFigure = (c: ReturnType<typeof cpuSlope>, what: string): Figure => {
    if (!c.fit) return { value: null, unit: '% of one core', basis: `not measured: fewer than two ${what} runs with CPU samples`, strength: 'not-measured' };
    const over = `over ${c.fit.n} runs (${c.fit.xMin}–${c.fit.xMax})`;
    if (c.fit.n < MIN_CPU_RUNS) return { value: null, unit: '% of one core', basis: `not measured: only ${c.fit.n} ${what} runs (under ${MIN_CPU_RUNS}) to fit a slope on`, strength: 'not-measured' };
    if (c.fit.r2 === null || c.fit.r2 < MIN_CPU_R2) return { value: null, unit: '% of one core', basis: `not measured: server CPU did not follow ${what} ${over} (r² ${c.fit.r2 === null ? 'n/a' : round(c.fit.r2, 3)} < ${MIN_CPU_R2}) — other work on the machine moved it more`, strength: 'not-measured' };
    return { value: round(Math.max(0, c.fit.slope * 100), 3), unit: '% of one core', basis: `slope of steady server CPU against ${what} ${over}, ×100 (r² ${round(c.fit.r2, 3)})` };
  };
  const sseHeld = pick(valid(scenarios, 'sse', 'ramp-sse', 'hybrid', 'soak', 'fault'), (r) => (r.groups.sse && r.groups.sse.connectSuccessPct >= 100 ? r.groups.sse.peakOpen : null), max);

  return {
    sse: {
      maxConcurrentConnections: degradation.sse && sseDeg.capacity.value !== null ? sseDeg.capacity : atLeast(sseHeld, 'connections', 'most SSE connections held open with every planned connection established'),
      recommendedLimit: sseDeg.recommended,
      performanceDegradationPoint: sseDeg.point,
    },
    supabaseRealtime: {
      maxChannels: atLeast(channels, 'channels', 'most channels with every user joined'),
      maxUsersPerChannel: usersPerChannel ? { value: usersPerChannel.v, unit: 'users', basis: `largest channel in a run that met every criterion (${usersPerChannel.s.id}); a lower bound — larger channels were not tried`, strength: 'lower-bound' } : { value: null, unit: 'users', basis: 'no Realtime run met every criterion', strength: 'not-measured' },
      recommendedChannelSize: comfortable
        ? { value: comfortable.v, unit: 'users', basis: `largest passing channel whose presence p99 stayed under ${PRESENCE_HEADROOM_MS} ms (half spike-003's 1 s budget) with ≥ 99.9% reliability (${comfortable.s.id}); larger channels were not tried`, strength: 'lower-bound' }
        : { value: null, unit: 'users', basis: `no passing channel kept presence p99 under ${PRESENCE_HEADROOM_MS} ms`, strength: 'not-measured' },
      performanceDegradationPoint: rtDeg.point,
      recommendedLimit: rtDeg.recommended,
    },
    hybrid: {
      maxTotalConnections: hybridTotal
        ? { value: hybridTotal.v, unit: 'connections', basis: `SSE + Realtime connections held together in ${hybridTotal.s.id}, which met every criterion (a lower bound; see the ramps for each transport alone)`, strength: 'lower-bound' }
        : { value: null, unit: 'connections', basis: 'no hybrid run met every criterion', strength: 'not-measured' },
      resourceUsageProfile: {
        sseMemoryPerConnectionKb: memFigure(sseMem, sseMemRuns, 'sse', 'SSE connections'),
        realtimeMemoryPerConnectionKb: memFigure(rtMem, rtMemRuns, 'realtime', 'Realtime users'),
        cpuPer100SseConnectionsPct: cpuFigure(sseCpu, 'SSE connections'),
        cpuPer100RealtimeConnectionsPct: cpuFigure(rtCpu, 'Realtime users'),
        baseRssMb: figure(baseRss, 'MB', 'server RSS before any connection'),
        bandwidthPerConnectionKBps: sseBandwidth
          ? { value: round(sseBandwidth.v, 4), unit: 'KB/s', basis: `highest steady bytes on the wire per connection across spike-003's SSE scenarios (${sseBandwidth.s.id}, ${sseBandwidth.s.result.config.sse?.ratePerStream ?? '?'} message/s per connection, spike-003's messageFrequency)`, strength: 'measured' }
          : { value: null, unit: 'KB/s', basis: 'no valid SSE scenario measured bandwidth', strength: 'not-measured' },
        sseWireBytesPerMessage: sseWire ? { value: round(sseWire.v, 1), unit: 'B', basis: `bytes on the wire per delivered SSE event (id/event lines, server fields, HTTP chunk framing, heartbeats) in ${sseWire.s.id}` } : { value: null, unit: 'B', basis: 'not measured', strength: 'not-measured' },
        ssePayloadBytesPerMessage: ssePayload !== null && sseWire ? { value: ssePayload, unit: 'B', basis: `the published payload per event in ${sseWire.s.id} (the load tester's progress fields and stamps)` } : { value: null, unit: 'B', basis: 'not measured', strength: 'not-measured' },
        realtimeBandwidthPerConnectionKBps: rtBandwidth ? { value: round(rtBandwidth.v, 4), unit: 'KB/s', basis: `heaviest Realtime scenario (${rtBandwidth.s.id}): every member receives every member's presence update, so it grows with channel size × update rate` } : { value: null, unit: 'KB/s', basis: 'no valid Realtime scenario measured bandwidth', strength: 'not-measured' },
        realtimeWireBytesPerMessage: rtWire !== null && rtBandwidth ? { value: rtWire, unit: 'B', basis: `bytes on the wire per received Realtime frame in ${rtBandwidth.s.id}` } : { value: null, unit: 'B', basis: 'not measured', strength: 'not-measured' },
      },
      scalingStrategy,
    },
  };
}

/** What the bandwidth figure depends on: the message rate it was judged at, and the wire cost of one message against its payload. */
function bandwidthBasis(bw: Figure, wire: Figure, payload: Figure): string {
  if (bw.value === null || wire.value === null) return bw.basis;
  const overhead = payload.value !== null && wire.value > 0 ? Math.round(((wire.value - payload.value) / wire.value) * 100) : null;
  const budgetRate = Math.floor((1024 / wire.value) * 10) / 10;
  return `${bw.basis}. Each event costs ${wire.value} B on the wire${payload.value !== null ? ` for a ${payload.value} B payload (${overhead}% protocol overhead)` : ''}, so the 1 KB/s budget holds up to about ${budgetRate} events/s per connection at this size`;
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
      connectionStability: bench(pick(stabilityRuns, (r) => r.groups.sse?.stabilityPct, min), '%', '> 99%', (v) => v > 99, soak.length ? 'stability over the soak run' : 'lowest stability across the SSE matrix (no soak run: pass --soak 600 for spike-003\'s 10-minute test)'),
    },
    supabaseRealtime: {
      presenceUpdateLatency: bench(pick(rtMatrix, (r) => r.groups.realtime?.latency.presence?.p99, max), 'ms', '< 1 s', (v) => v < 1000, 'worst presence p99 across the Realtime matrix'),
      messageDeliveryReliability: bench(pick(rtMatrix, (r) => r.groups.realtime?.deliveryTotal.reliabilityPct, min), '%', '> 99.9%', (v) => v >= 99.9, 'lowest reliability across the Realtime matrix'),
      channelSubscriptionTime: bench(pick(rtMatrix, (r) => r.groups.realtime?.subscribe?.p99, max), 'ms', '< 1 s', (v) => v < 1000, 'worst subscription (connect + join) p99 across the Realtime matrix'),
    },
    resourceUsage: {
      memoryPerConnection: memKb
        ? { value: memKb.value, unit: 'KB', target: '< 10 MB', pass: memKb.value! < 10 * 1024, basis: memKb.basis }
        : { value: null, unit: 'KB', target: '< 10 MB', pass: null, basis: [profile.sseMemoryPerConnectionKb.basis, profile.realtimeMemoryPerConnectionKb.basis].join('; ') },
      cpuUsageIncrease: cpu
        ? { value: cpu.value, unit: '% per 100 connections', target: '< 5% per 100 connections', pass: cpu.value! < 5, basis: cpu.basis }
        : { value: null, unit: '% per 100 connections', target: '< 5% per 100 connections', pass: null, basis: [profile.cpuPer100SseConnectionsPct.basis, profile.cpuPer100RealtimeConnectionsPct.basis].join('; ') },
      networkBandwidth: { value: bw.value, unit: 'KB/s per connection', target: '< 1 KB/s per connection', pass: bw.value === null ? null : bw.value < 1, basis: bandwidthBasis(bw, profile.sseWireBytesPerMessage, profile.ssePayloadBytesPerMessage) },
    },
  };
}
