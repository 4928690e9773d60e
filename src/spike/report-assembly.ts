// Assembles the spike report from the runs: the architecture decision, the seed's
// ScalabilityLimits and PerformanceBenchmarks, the cost projection (from the message rates
// the Realtime runs measured), the run-to-run noise, the machine and the notes.
import { cpus, loadavg, totalmem } from 'node:os';
import { sseUserLatency } from '../load/result.js';
import { measureSpread } from './noise.js';
import type { Profile } from './matrix.js';
import { computeBenchmarks, computeLimits } from './limits.js';
import { decide, gatherFacts, worstRealtimeP99 } from './decision.js';
import { DEFAULT_COST_ASSUMPTIONS, projectCost, type CostInputs } from './cost.js';
import type { Environment } from './environment.js';
import type { ScenarioRecord, SpikeReport, Spread } from './model.js';

/** The spike's options the report states. */
export interface ReportOptions {
  profile: Profile;
  soakS?: number;
  /** Cost assumptions; message rates default to what the spike measured. */
  cost?: Partial<Omit<CostInputs, 'usersPerInstance'>>;
}

function machine(): SpikeReport['machine'] {
  const c = cpus();
  return { cpus: c.length, cpuModel: c[0]?.model ?? 'unknown', memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10, node: process.version, platform: `${process.platform} ${process.arch}`, loadAverage: loadavg().map((v) => Math.round(v * 100) / 100) };
}

/** Per-user message rates measured in the Realtime 10 × 10 run (or the closest one), for the cost projection. */
function measuredRates(scenarios: readonly ScenarioRecord[]): { received: number; sent: number; progress: number } {
  const rt = scenarios.find((s) => s.id === 'rt-10x10' && s.result.valid) ?? scenarios.find((s) => s.category === 'realtime' && s.result.valid);
  let received = 0;
  let sent = 0;
  if (rt?.result.groups.realtime) {
    const g = rt.result.groups.realtime;
    const users = Math.max(1, g.planned);
    const secs = Math.max(1, rt.result.durationS);
    const got = ['broadcast', 'presence', 'comments'].reduce((a, k) => a + (g.delivery[k]?.received ?? 0), 0);
    received = got / users / secs;
    const r = rt.result.config.realtime!;
    sent = r.docRate / r.usersPerProject + (r.presence && r.presenceIntervalMs > 0 ? 1000 / r.presenceIntervalMs : 0);
  }
  const sse = scenarios.find((s) => s.category === 'sse');
  return { received, sent, progress: sse?.result.config.sse?.ratePerStream ?? 1 };
}

/** The run-to-run spread of every figure the comparison rules use, from the repeated baselines. */
function noiseOf(scenarios: readonly ScenarioRecord[]): Spread[] {
  const out: Spread[] = [];
  const sse = (id: string): void => void out.push(measureSpread(scenarios, id, 'SSE delivery p99 (ms)', (r) => sseUserLatency(r.groups.sse)?.p99), measureSpread(scenarios, id, 'SSE delivery p50 (ms)', (r) => sseUserLatency(r.groups.sse)?.p50));
  const rt = (id: string): void => void out.push(measureSpread(scenarios, id, 'Realtime p99, worst kind (ms)', worstRealtimeP99), measureSpread(scenarios, id, 'presence p99 (ms)', (r) => r.groups.realtime?.latency.presence?.p99));
  sse('sse-100');
  rt('rt-10x10');
  rt('rt-20x5');
  rt('rt-presence-100');
  return out.filter((x) => x.values.length > 0);
}

/**
 * The report from everything the spike measured: the architecture decision by its rules,
 * the seed's limits and benchmarks, the cost projection from measured rates, the noise
 * figures and the notes a reader needs.
 */
export function assembleReport(a: { opts: ReportOptions; env: Environment; scenarios: ScenarioRecord[]; fault: SpikeReport['fault']; degradation: SpikeReport['degradation']; started: number; errors: SpikeReport['errors']; generator: NonNullable<SpikeReport['generator']> }): SpikeReport {
  const { opts, env, scenarios, fault, degradation } = a;
  const costUsers = opts.cost?.users ?? DEFAULT_COST_ASSUMPTIONS.users;
  const facts = gatherFacts(scenarios, degradation, fault, costUsers, cpus().length);
  const decision = decide(facts);
  const scalingStrategy = decision.scaling.map((s) => s.statement).join(' ');
  const limits = computeLimits(scenarios, degradation, scalingStrategy);
  const benchmarks = computeBenchmarks(scenarios, limits);
  const rates = measuredRates(scenarios);
  const recSse = limits.sse.recommendedLimit.value;
  const recRt = limits.supabaseRealtime.recommendedLimit.value;
  const usersPerInstance = recSse && recRt ? Math.floor(1 / (1 / recSse + 1 / recRt)) : null;
  const capacityIsLowerBound = limits.sse.recommendedLimit.strength !== 'measured' || limits.supabaseRealtime.recommendedLimit.strength !== 'measured';
  const defined = Object.fromEntries(Object.entries(opts.cost ?? {}).filter(([, v]) => v !== undefined)) as Partial<CostInputs>;
  const cost = projectCost({
    ...DEFAULT_COST_ASSUMPTIONS,
    realtimeReceivedPerUserPerSec: rates.received,
    realtimeSentPerUserPerSec: rates.sent,
    progressPerUserPerSec: rates.progress,
    ...defined,
    users: costUsers,
    usersPerInstance,
    capacityIsLowerBound,
  });
  const invalid = scenarios.filter((s) => !s.result.valid).map((s) => s.id);
  const notes = [...env.notes];
  if (invalid.length) notes.push(`${invalid.length} run(s) were INVALID — the generator could not vouch for them (${invalid.join(', ')}); they are excluded from limits, benchmarks and fits, and drawn apart in the charts.`);
  for (const d of [degradation.sse, degradation.realtime]) if (d) notes.push(`${d.transport === 'sse' ? 'SSE' : 'Realtime'} ramp: connections opened at ${d.openRate}/s in every step (so each step differs only in how many are held), each load held ${d.holdMs / 1000} s; ${d.finding}.`);
  notes.push('The embedded gateway runs with per-user and per-tenant rate limits raised (connections per user, joins/s, events/s) so that a run finds the gateway’s capacity rather than a quota; Supabase’s plan quotas appear in the cost projection.');
  return {
    version: 2,
    generatedAt: new Date().toISOString(),
    mode: opts.profile + (opts.soakS ? ` + soak ${opts.soakS}s` : ''),
    wallClockS: Math.round((Date.now() - a.started) / 1000),
    machine: machine(),
    target: { kind: env.target.kind, url: env.target.url, embedded: !!env.embedded, database: env.database },
    scenarios,
    fault,
    degradation,
    limits,
    benchmarks,
    decision,
    cost,
    noise: noiseOf(scenarios),
    generator: a.generator,
    invalidScenarios: invalid,
    errors: a.errors,
    notes,
  };
}
