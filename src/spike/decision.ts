// The architecture decision, derived from the measurements by rules stated here and
// printed with the report. `gatherFacts` reads the numbers out of the runs; `decide`
// applies the rules to those facts only, so the rules can be tested on known inputs.
//
// Conclusions are no stronger than their evidence:
// - a capacity from a ramp that never degraded is a LOWER BOUND ("≥ N"); instance counts and
//   costs are sized only from measured capacities — from lower bounds the rule says "at most
//   K instances" and what it would take (generator processes, agents) to measure the limit;
// - a rule that compares two figures (interference, channel size) fires only when the
//   difference is material (over the rule's budget) AND beyond that figure's run-to-run
//   spread, measured by repeating the baseline runs; otherwise it says it cannot tell.
import { sseUserLatency, type RunResult } from '../load/result.js';
import { MAX_SOCKETS_PER_WORKER } from '../load/pool.js';
import { GENERATOR_CPU_BUDGET_PCT } from '../load/generator-cost.js';
import { PRESENCE_HEADROOM_MS, RECOMMENDED_SHARE, valid } from './limits.js';
import { compareToBaseline, measureSpread, spreadOf, type Comparison } from './noise.js';
import type { ArchitectureDecision, DecisionItem, DegradationRecord, FaultComparison, ScenarioRecord, Spread, Strength } from './model.js';

/** Interference budget: a side's p99 in the hybrid run may exceed its solo p99 by this factor or this many ms, whichever is larger. */
export const INTERFERENCE_FACTOR = 1.5;
export const INTERFERENCE_SLACK_MS = 50;

/** What a transport's ramp established, and what the generator cost while establishing it. */
export interface RampFacts {
  strength: Strength;
  lastPass: number | null;
  firstFail: number | null;
  finding: string;
  /** Why the ramp ended: its largest step or step budget (a bigger ramp would do), or the generator (it needs to grow or move). */
  stoppedBy: string;
  generator: DegradationRecord['generator'];
}

export interface SpikeFacts {
  sseMatrix: { id: string; connections: number; passed: boolean; p99: number | null; stability: number | null; failures: string[] }[];
  realtimeMatrix: { id: string; projects: number; usersPerProject: number; passed: boolean; presenceP99: number | null; broadcastP99: number | null; reliability: number | null; failures: string[] }[];
  /** The hybrid run's p99 per side, against the spread of the solo baselines (sse-100, rt-10x10). */
  hybrid: { id: string; passed: boolean; sseP99: number | null; sseSolo: Spread; realtimeP99: number | null; realtimeSolo: Spread } | null;
  /** Presence p99 of the smallest and the largest channel, each over its repeated runs. */
  channels: { id: string; usersPerProject: number; presence: Spread }[];
  /** null unaffected: the fault's effect could not be told from noise. */
  fault: { unaffected: boolean | null; failedSubsystem: string; deliveredAfterRecovery: boolean | null; why: string[] } | null;
  sse: RampFacts | null;
  realtime: RampFacts | null;
  /** Users the cost projection is made for; each holds one SSE stream and one Realtime socket at peak. */
  projectedUsers: number;
  /** CPUs of the machine the spike ran on (a generator host like it, for "what it would take"). */
  machineCpus: number;
  /** The Realtime run with the highest bandwidth per connection, and its shape (presence fan-out). */
  bandwidth?: { id: string; kbps: number; usersPerChannel: number | null; presenceIntervalS: number | null; ratePerConnection: number | null } | null;
  reconnectsObserved: number;
  invalidRuns: number;
}

const failuresOf = (r: RunResult): string[] => r.thresholds.filter((t) => t.status === 'fail').map((t) => `${t.metric} ${t.actual} (needs ${t.op} ${t.value})`);

export function worstRealtimeP99(r: RunResult): number | null {
  const g = r.groups.realtime;
  if (!g) return null;
  const xs = [g.latency.broadcast?.p99, g.latency.presence?.p99, g.latency.comments?.p99].filter((v): v is number => typeof v === 'number');
  return xs.length ? Math.max(...xs) : null;
}

function rampFacts(d: DegradationRecord | undefined): RampFacts | null {
  return d ? { strength: d.strength, lastPass: d.lastPass, firstFail: d.firstFail, finding: d.finding, stoppedBy: d.stoppedBy, generator: d.generator } : null;
}

export function gatherFacts(scenarios: readonly ScenarioRecord[], degradation: { sse?: DegradationRecord; realtime?: DegradationRecord }, fault: FaultComparison | { skipped: string }, projectedUsers: number, machineCpus: number): SpikeFacts {
  const sse = valid(scenarios, 'sse').map((s) => ({
    id: s.id,
    connections: s.load,
    passed: s.result.passed,
    p99: sseUserLatency(s.result.groups.sse)?.p99 ?? null,
    stability: s.result.groups.sse?.stabilityPct ?? null,
    failures: failuresOf(s.result),
  }));
  const rtRuns = valid(scenarios, 'realtime');
  const rt = rtRuns.map((s) => ({
    id: s.id,
    projects: s.result.config.realtime?.projects ?? 0,
    usersPerProject: s.result.config.realtime?.usersPerProject ?? 0,
    passed: s.result.passed,
    presenceP99: s.result.groups.realtime?.latency.presence?.p99 ?? null,
    broadcastP99: s.result.groups.realtime?.latency.broadcast?.p99 ?? null,
    reliability: s.result.groups.realtime?.deliveryTotal.reliabilityPct ?? null,
    failures: failuresOf(s.result),
  }));
  const hybridRun = valid(scenarios, 'hybrid')[0];
  let hybrid: SpikeFacts['hybrid'] = null;
  if (hybridRun) {
    const h = hybridRun.result;
    const soloSse = valid(scenarios, 'sse').find((s) => !s.repeatOf && s.load === h.config.sse?.connections);
    const soloRt = rtRuns.find((s) => !s.repeatOf && s.result.config.realtime?.projects === h.config.realtime?.projects && s.result.config.realtime?.usersPerProject === h.config.realtime?.usersPerProject);
    hybrid = {
      id: hybridRun.id,
      passed: h.passed,
      sseP99: sseUserLatency(h.groups.sse)?.p99 ?? null,
      sseSolo: soloSse ? measureSpread(scenarios, soloSse.id, 'SSE delivery p99', (r) => sseUserLatency(r.groups.sse)?.p99) : spreadOf('sse solo', 'SSE delivery p99', []),
      realtimeP99: worstRealtimeP99(h),
      realtimeSolo: soloRt ? measureSpread(scenarios, soloRt.id, 'Realtime p99 (worst of broadcast, presence, comments)', worstRealtimeP99) : spreadOf('realtime solo', 'Realtime p99', []),
    };
  }
  // Channel size against presence latency: the smallest and the largest channel of the matrix, each over its repeats.
  const originals = rtRuns.filter((s) => !s.repeatOf && s.result.groups.realtime?.latency.presence?.p99 != null);
  const bySize = [...originals].sort((a, b) => (a.result.config.realtime?.usersPerProject ?? 0) - (b.result.config.realtime?.usersPerProject ?? 0));
  const ends = bySize.length >= 2 ? [bySize[0]!, bySize[bySize.length - 1]!] : [];
  const channels = ends.map((s) => ({ id: s.id, usersPerProject: s.result.config.realtime!.usersPerProject, presence: measureSpread(scenarios, s.id, 'presence p99', (r) => r.groups.realtime?.latency.presence?.p99) }));
  return {
    sseMatrix: sse,
    realtimeMatrix: rt,
    hybrid,
    channels,
    fault:
      'skipped' in fault || !fault.valid
        ? null
        : { unaffected: fault.rows.some((r) => r.verdict === 'degraded') ? false : fault.rows.some((r) => r.verdict === 'cannot tell') ? null : true, failedSubsystem: fault.failedSubsystem, deliveredAfterRecovery: fault.failedSide.deliveredAfterRecovery, why: fault.rows.filter((r) => r.why).map((r) => `${r.metric}: ${r.why}`) },
    sse: rampFacts(degradation.sse),
    realtime: rampFacts(degradation.realtime),
    projectedUsers,
    machineCpus,
    bandwidth: heaviest(scenarios),
    reconnectsObserved: scenarios.reduce((a, s) => a + (s.result.groups.sse?.reconnects ?? 0) + (s.result.groups.realtime?.reconnects ?? 0), 0),
    invalidRuns: scenarios.filter((s) => !s.result.valid).length,
  };
}

function heaviest(scenarios: readonly ScenarioRecord[]): SpikeFacts['bandwidth'] {
  let best: SpikeFacts['bandwidth'] = null;
  for (const s of valid(scenarios, 'realtime')) {
    const kbps = s.result.metrics['realtime.bandwidth_per_connection_kbps'];
    if (typeof kbps !== 'number' || (best && kbps <= best.kbps)) continue;
    const rt = s.result.config.realtime;
    best = {
      id: s.id,
      kbps,
      usersPerChannel: rt?.usersPerProject ?? null,
      presenceIntervalS: rt?.presence && rt.presenceIntervalMs > 0 ? rt.presenceIntervalMs / 1000 : null,
      ratePerConnection: null,
    };
  }
  return best;
}

/** The seed's network budget per connection. */
export const BANDWIDTH_BUDGET_KBPS = 1;

/** The interference budget around a solo p99. */
export function interferenceBudget(solo: number): number {
  return Math.max(solo * INTERFERENCE_FACTOR, solo + INTERFERENCE_SLACK_MS);
}

/** True when `during` stays within the interference budget of `solo`. */
export function withinInterferenceBudget(solo: number | null, during: number | null): boolean | null {
  if (solo === null || during === null) return null;
  return during <= interferenceBudget(solo);
}

const fmt = (v: number | null, unit = ''): string => (v === null ? 'n/a' : `${Math.round(v * 100) / 100}${unit}`);
const n = (v: number): string => v.toLocaleString('en-US');

/**
 * Generator processes, and agent machines like this one, it would take to push a ramp to
 * `target`: each worker holds at most MAX_SOCKETS_PER_WORKER sockets and, at the ramp's
 * message rate, only as many as its measured per-message cost allows within the CPU budget.
 */
export function generatorNeeded(r: RampFacts, target: number, machineCpus: number): { workers: number; agents: number; perWorker: number } | null {
  const g = r.generator;
  if (!g) return null;
  let perWorker = MAX_SOCKETS_PER_WORKER;
  if (g.cpuUsPerMessage && g.messagesPerSecPerConnection) {
    const messagesPerWorker = (GENERATOR_CPU_BUDGET_PCT * 10 * 1000) / g.cpuUsPerMessage;
    perWorker = Math.min(perWorker, Math.floor(messagesPerWorker / g.messagesPerSecPerConnection));
  }
  if (perWorker < 1) return null;
  const workers = Math.ceil(target / perWorker);
  // An agent like this machine runs one worker per core but one (the agent's default: CPUs − 1).
  const agents = Math.ceil(workers / Math.max(1, machineCpus - 1));
  return { workers, agents, perWorker };
}

/**
 * "How to know": what a rerun needs to turn a lower bound into a measured limit. A ramp that
 * ended at its largest step (or its step budget) needs a longer ramp — and a generator big
 * enough for it; one that ended on an INVALID step needs the generator off the gateway's
 * machine, sized from the measured cost per connection.
 */
function howToMeasure(what: string, r: RampFacts, machineCpus: number): string {
  const target = (r.lastPass ?? 0) * 2;
  const need = target > 0 ? generatorNeeded(r, target, machineCpus) : null;
  const agents = '`fanout load agent --listen 0.0.0.0:7100 --token "$T"` on each, then `fanout spike --agents host1:7100,… --agent-token "$T"`';
  const sized = need ? `about ${need.workers} generator worker process${need.workers > 1 ? 'es' : ''} (≈ ${n(need.perWorker)} connections each at the measured cost, ${GENERATOR_CPU_BUDGET_PCT}% of a core apiece)` : 'more generator processes';
  if (r.stoppedBy !== 'generator-limit') {
    const more = need && need.workers > (r.generator?.workers ?? 0) ? `, with ${sized} — ${need.agents} machine${need.agents > 1 ? 's' : ''} like this one running ${agents}` : '';
    return `the ${what} ramp ended at its largest step before the gateway degraded: rerun with a longer ramp (the default profile, \`fanout spike\`, ramps SSE to 19,000 connections and Realtime to 12,800 users) to push past ${n(r.lastPass ?? 0)}${more}`;
  }
  return `the ${what} ramp ended when the generator could no longer vouch for its figures: to push it to ${n(target)}, run ${sized} off the gateway's machine — ${need ? need.agents : 'more'} machine${need && need.agents === 1 ? '' : 's'} like this one (${machineCpus} CPUs) running ${agents}`;
}

/** The comparison verdict in words for an evidence line. */
const said = (c: Comparison): string => `${c.verdict}: ${c.why}`;

export function decide(f: SpikeFacts): ArchitectureDecision {
  const primary: DecisionItem[] = [];
  const scaling: DecisionItem[] = [];
  const fallbacks: DecisionItem[] = [];

  // P1 — progress tracking over SSE.
  const sseFailed = f.sseMatrix.filter((s) => !s.passed);
  const sseTop = Math.max(0, ...f.sseMatrix.map((s) => s.connections));
  if (f.sseMatrix.length && sseFailed.length === 0) {
    primary.push({
      statement: `Use SSE for progress tracking (one-way): it met every criterion at each tested scale up to ${sseTop} connections.`,
      rule: 'P1: SSE carries progress if every SSE scenario of the spike-003 matrix passes all acceptance criteria.',
      evidence: f.sseMatrix.map((s) => `${s.id}: p99 ${fmt(s.p99, ' ms')}, stability ${fmt(s.stability, '%')}`),
    });
  } else if (f.sseMatrix.length) {
    primary.push({
      statement: `Do not rely on SSE alone for progress at the tested scale: ${sseFailed.map((s) => s.id).join(', ')} failed; carry progress over the Realtime channel (broadcast) until the SSE path is fixed.`,
      rule: 'P1: SSE carries progress only if every SSE scenario of the spike-003 matrix passes; otherwise progress moves to the transport that passed.',
      evidence: sseFailed.map((s) => `${s.id}: ${s.failures.join('; ') || 'failed'}`),
    });
  }

  // P2 — collaboration over the Supabase Realtime protocol.
  const rtFailed = f.realtimeMatrix.filter((s) => !s.passed);
  if (f.realtimeMatrix.length && rtFailed.length === 0) {
    primary.push({
      statement: 'Use the Supabase Realtime protocol (presence, broadcast, postgres_changes) for collaboration (bi-directional): every Realtime scenario met the criteria.',
      rule: 'P2: Realtime carries collaboration if every Realtime scenario passes (presence p99 < 1 s, reliability ≥ 99.9%, no loss, subscription p99 < 1 s).',
      evidence: f.realtimeMatrix.map((s) => `${s.id}: presence p99 ${fmt(s.presenceP99, ' ms')}, broadcast p99 ${fmt(s.broadcastP99, ' ms')}, reliability ${fmt(s.reliability, '%')}`),
    });
  } else if (f.realtimeMatrix.length) {
    primary.push({
      statement: `Collaboration over Realtime needs work before rollout: ${rtFailed.map((s) => s.id).join(', ')} failed a criterion; keep channels at or below the sizes that passed.`,
      rule: 'P2: Realtime carries collaboration only if every Realtime scenario passes.',
      evidence: rtFailed.map((s) => `${s.id}: ${s.failures.join('; ') || 'failed'}`),
    });
  }

  // P3 — one process for both, or separate: interference must be material AND beyond noise.
  if (f.hybrid) {
    const sse = compareToBaseline(f.hybrid.sseSolo, f.hybrid.sseP99, interferenceBudget);
    const rt = compareToBaseline(f.hybrid.realtimeSolo, f.hybrid.realtimeP99, interferenceBudget);
    const worse = [sse, rt].some((c) => c.verdict === 'worse');
    const unsure = [sse, rt].some((c) => c.verdict === 'cannot tell');
    const statement = !f.hybrid.passed
      ? 'Run SSE and Realtime in separate gateway processes: together they failed a criterion.'
      : worse
        ? 'Run SSE and Realtime in separate gateway processes: together, one slowed the other beyond the interference budget and beyond run-to-run noise.'
        : unsure
          ? 'Run both in one gateway for now, but this spike cannot tell whether they interfere: a difference over the budget stayed within the run-to-run noise (or the noise was not measured); repeat the baselines (--repeats) to know.'
          : 'Run both in one gateway (hybrid): together they met every criterion and neither side slowed the other beyond the interference budget.';
    primary.push({
      statement,
      rule: `P3: separate processes only if the hybrid run fails, or a side's p99 exceeds max(${INTERFERENCE_FACTOR}× its solo median, solo + ${INTERFERENCE_SLACK_MS} ms) by more than the solo runs' own spread; over the budget but within the spread is "cannot tell".`,
      evidence: [`SSE: ${said(sse)}`, `Realtime: ${said(rt)}`, `hybrid run ${f.hybrid.passed ? 'passed' : 'failed'}`],
    });
  }

  // S1 — per-instance operating limits from the ramps, by strength.
  const rec = (r: RampFacts | null): number | null => (r?.lastPass == null ? null : Math.floor(r.lastPass * RECOMMENDED_SHARE));
  const recSse = rec(f.sse);
  const recRt = rec(f.realtime);
  const capText = (what: string, r: RampFacts | null, cap: number | null, unit: string): string => {
    if (!r || cap === null) return `unknown (${r?.finding ?? `the ${what} ramp was not run`})`;
    return r.strength === 'measured' ? `${n(cap)} ${unit} (${RECOMMENDED_SHARE * 100}% of ${n(r.lastPass!)}; ${r.finding})` : `at least ${n(cap)} ${unit} — a floor, not a cap (${r.finding})`;
  };
  const bothMeasured = f.sse?.strength === 'measured' && f.realtime?.strength === 'measured';
  scaling.push({
    statement: bothMeasured
      ? `Cap each gateway instance at ${n(recSse!)} SSE connections and ${n(recRt!)} Realtime users on hardware like this machine; alert before the cap (connection pooling and admission control at the gateway).`
      : `Per-instance operating limits on hardware like this machine — SSE: ${capText('SSE', f.sse, recSse, 'connections')}; Realtime: ${capText('Realtime', f.realtime, recRt, 'users')}. A floor is what this generator could show, not where the gateway degrades: do not cap an instance at it.`,
    rule: `S1: operating limit = ${RECOMMENDED_SHARE * 100}% of the highest ramp load that met every criterion — a cap only when the ramp also found a failing load above it (measured); otherwise a floor.`,
    evidence: [`SSE: ${f.sse?.finding ?? 'ramp not run'}`, `Realtime: ${f.realtime?.finding ?? 'ramp not run'}`],
  });

  // S2 — instances at the projected number of users, only from measured capacities.
  if (recSse !== null && recRt !== null && recSse > 0 && recRt > 0) {
    // Both transports share a process: each user uses its share of each cap.
    const perInstanceUsers = Math.floor(1 / (1 / recSse + 1 / recRt));
    const instances = Math.max(1, Math.ceil(f.projectedUsers / Math.max(1, perInstanceUsers)));
    const lower = [f.sse, f.realtime].filter((r) => r?.strength !== 'measured');
    const how = [f.sse && f.sse.strength !== 'measured' ? howToMeasure('SSE', f.sse, f.machineCpus) : null, f.realtime && f.realtime.strength !== 'measured' ? howToMeasure('Realtime', f.realtime, f.machineCpus) : null].filter((x): x is string => !!x);
    scaling.push({
      statement: lower.length
        ? `At most ${instances} instance${instances > 1 ? 's' : ''} for ${f.projectedUsers} concurrent users (each holds at least ≈ ${n(perInstanceUsers)} users with one SSE stream and one Realtime socket); the exact number is not known from this run because ${lower.length === 2 ? 'both capacities are' : 'a capacity is'} a lower bound. To know: ${how.join('; ')}.`
        : instances === 1
          ? `One instance serves the projected ${f.projectedUsers} concurrent users (capacity ≈ ${n(perInstanceUsers)} users with one SSE stream and one Realtime socket each); scale vertically first.`
          : `Scale horizontally: ${instances} instances for ${f.projectedUsers} concurrent users (≈ ${n(perInstanceUsers)} per instance), behind a load balancer, with the Redis or NATS bus so a message published on one instance reaches subscribers on all of them.`,
      rule: 'S2: users per instance = 1 / (1/SSE limit + 1/Realtime limit); instances = ⌈users / users per instance⌉ — an exact count only from measured limits, "at most" from lower bounds; more than one instance needs the shared bus.',
      evidence: [`SSE limit ${n(recSse)} (${f.sse!.strength}), Realtime limit ${n(recRt)} (${f.realtime!.strength}), projected users ${f.projectedUsers}`],
    });
  } else {
    scaling.push({
      statement: 'Per-instance capacity is unknown (a ramp did not produce a passing step); measure again before sizing.',
      rule: 'S2 needs a passing step in both ramps.',
      evidence: [`SSE: ${f.sse?.finding ?? 'ramp not run'}`, `Realtime: ${f.realtime?.finding ?? 'ramp not run'}`],
    });
  }

  // S3 — browser connection limits.
  scaling.push({
    statement: 'Multiplex progress streams: one EventSource per tab on /v1/stream?topic=a&topic=b (or HTTP/2) rather than one per content item; browsers allow 6 HTTP/1.1 connections per origin.',
    rule: 'S3: spike-003 lists the 6-connections-per-domain browser limit as a high risk; the multi-topic stream removes it without more server connections.',
    evidence: ['spike-003 risk 1 (Browser Connection Limits)'],
  });

  // S4 — channel size: shard only when presence latency at the largest channel is material AND its growth is beyond noise.
  if (f.channels.length >= 2) {
    const small = f.channels[0]!;
    const large = f.channels[f.channels.length - 1]!;
    const c = compareToBaseline(small.presence, large.presence, () => PRESENCE_HEADROOM_MS);
    const growth = small.presence.median !== null && large.presence.median !== null ? `presence p99 ${fmt(small.presence.median, ' ms')} at ${small.usersPerProject} users/channel, ${fmt(large.presence.median, ' ms')} at ${large.usersPerProject}` : 'presence p99 not measured at both sizes';
    scaling.push({
      statement:
        c.verdict === 'worse'
          ? `Keep channels small: ${growth}, beyond half spike-003's 1 s budget and beyond run-to-run noise; shard large projects into several channels.`
          : c.verdict === 'cannot tell'
            ? `Channel size: this spike cannot tell whether ${large.usersPerProject}-user channels need sharding (${growth}; ${c.why}).`
            : `One channel per project is fine up to ${large.usersPerProject} users: ${growth}, within half spike-003's 1 s budget.`,
      rule: `S4: shard channels only if presence p99 at the largest tested channel exceeds ${PRESENCE_HEADROOM_MS} ms (half spike-003's budget) and exceeds the smallest channel's by more than their run-to-run spread.`,
      evidence: [said(c), ...f.channels.map((ch) => `${ch.id}: presence p99 over ${ch.presence.values.length} run(s): ${ch.presence.values.map((v) => fmt(v)).join(', ')} ms (spread ${fmt(ch.presence.spread, ' ms')})`)],
    });
  }

  // S5 — Realtime bandwidth per connection (presence fan-out): informative, the seed judges its budget at the SSE workload.
  const bw = f.bandwidth;
  if (bw) {
    const factor = bw.kbps / BANDWIDTH_BUDGET_KBPS;
    const over = factor > 1;
    const how =
      bw.presenceIntervalS !== null
        ? `presence updates every ${Math.ceil(bw.presenceIntervalS * factor)} s instead of ${bw.presenceIntervalS} s in ${bw.usersPerChannel}-user channels (every member receives every member's update), or smaller channels`
        : bw.ratePerConnection !== null
          ? `at most ${Math.round((bw.ratePerConnection / factor) * 100) / 100} progress events/s per stream, or coalesced progress (send only the latest state)`
          : 'fewer messages per connection';
    scaling.push({
      statement: over
        ? `Budget bandwidth: ${bw.id} needed ${Math.round(bw.kbps * 100) / 100} KB/s per connection, ${Math.round(factor * 10) / 10}× spike-003's ${BANDWIDTH_BUDGET_KBPS} KB/s; to fit it, ${how}.`
        : `Bandwidth fits spike-003's budget: the heaviest run (${bw.id}) used ${Math.round(bw.kbps * 100) / 100} KB/s per connection, under ${BANDWIDTH_BUDGET_KBPS} KB/s.`,
      rule: `S5: per-connection bandwidth should stay under ${BANDWIDTH_BUDGET_KBPS} KB/s; when the heaviest Realtime run does not, its message rate is scaled down by the excess factor. (Spike-003's networkBandwidth benchmark itself is judged at its SSE workload.)`,
      evidence: [`${bw.id}: ${Math.round(bw.kbps * 1000) / 1000} KB/s per connection in steady state`],
    });
  }

  // F1 — polling fallback for SSE.
  fallbacks.push({
    statement: 'Fall back to long-polling (GET /api/content/:id/progress/poll?after=<id>) when an EventSource cannot stay connected (proxies that buffer, corporate networks); it uses the same ids and history, so switching loses nothing.',
    rule: 'F1: always offer the polling fallback; it is required when any run saw reconnects.',
    evidence: [`reconnects observed across the spike: ${f.reconnectsObserved}`],
  });

  // F2 — when the database (collaboration side) fails.
  if (f.fault) {
    const recovered = f.fault.deliveredAfterRecovery ? 'their change feed recovered after the database returned' : 'must be retried by the client after recovery';
    fallbacks.push({
      statement:
        f.fault.unaffected === true
          ? `Degrade gracefully on a ${f.fault.failedSubsystem} outage: progress over SSE kept its solo figures while the ${f.fault.failedSubsystem} was down, so keep SSE independent of the database; comments fail fast and ${recovered}.`
          : f.fault.unaffected === false
            ? `Isolate SSE from the ${f.fault.failedSubsystem}: progress streams degraded while it was down (beyond the budget and beyond run-to-run noise); move database work off the gateway's event loop or into a separate process.`
            : `This spike cannot tell whether SSE noticed the ${f.fault.failedSubsystem} outage (a difference stayed within run-to-run noise); comments fail fast and ${recovered}.`,
      rule: 'F2: the surviving side must stay within its solo interference budget during the fault; it degraded only if over the budget AND beyond the solo runs\' spread.',
      evidence: [`change feed after recovery: ${f.fault.deliveredAfterRecovery === null ? 'not observed' : f.fault.deliveredAfterRecovery ? 'delivering' : 'not delivering'}`, ...f.fault.why],
    });
  } else {
    fallbacks.push({
      statement: 'Graceful degradation is unproven here: the failure scenario was not run, or its run was INVALID (the generator could not keep up), so its figures are not evidence.',
      rule: 'F2 needs a valid fault run and a valid solo run to compare with.',
      evidence: [],
    });
  }

  // F3 — WebSocket trouble.
  fallbacks.push({
    statement: 'When the Realtime WebSocket is down, send broadcasts through the REST endpoint (POST /realtime/v1/api/broadcast — realtime-js does this automatically for an unjoined channel) and rejoin with back-off (1, 2, 5, 10 s); show presence as stale rather than empty.',
    rule: 'F3: the protocol already has a REST path for broadcasts; presence cannot be sent without a socket, so the UI must tolerate stale presence.',
    evidence: [`Realtime runs measured: ${f.realtimeMatrix.length}`],
  });
  return { primary, scaling, fallbacks };
}
