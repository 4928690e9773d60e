// The architecture decision, derived from the measurements by rules stated here and
// printed with the report. `gatherFacts` reads the numbers out of the runs; `decide`
// applies the rules to those facts only, so the rules can be tested on known inputs.
import { sseUserLatency, type RunResult } from '../load/result.js';
import { RECOMMENDED_SHARE, valid } from './limits.js';
import type { ArchitectureDecision, DecisionItem, DegradationRecord, FaultComparison, ScenarioRecord } from './model.js';

/** Interference budget: a side's p99 in the hybrid run may exceed its solo p99 by this factor or this many ms, whichever is larger. */
export const INTERFERENCE_FACTOR = 1.5;
export const INTERFERENCE_SLACK_MS = 50;

export interface SpikeFacts {
  sseMatrix: { id: string; connections: number; passed: boolean; p99: number | null; stability: number | null; failures: string[] }[];
  realtimeMatrix: { id: string; projects: number; usersPerProject: number; passed: boolean; presenceP99: number | null; broadcastP99: number | null; reliability: number | null; failures: string[] }[];
  hybrid: { id: string; passed: boolean; sseP99: number | null; sseSoloP99: number | null; realtimeP99: number | null; realtimeSoloP99: number | null } | null;
  fault: { unaffected: boolean; failedSubsystem: string; deliveredAfterRecovery: boolean | null } | null;
  sseLastPass: number | null;
  sseFirstFail: number | null;
  realtimeLastPass: number | null;
  realtimeFirstFail: number | null;
  /** Why each ramp stopped (a cap from a ramp that never failed is only a lower bound). */
  sseStoppedBy?: string;
  realtimeStoppedBy?: string;
  /** Users the cost projection is made for; each holds one SSE stream and one Realtime socket at peak. */
  projectedUsers: number;
  /** The run with the highest bandwidth per connection, and its shape. */
  bandwidth?: { id: string; kbps: number; usersPerChannel: number | null; presenceIntervalS: number | null; ratePerConnection: number | null } | null;
  reconnectsObserved: number;
  invalidRuns: number;
}

const failuresOf = (r: RunResult): string[] => r.thresholds.filter((t) => t.status === 'fail').map((t) => `${t.metric} ${t.actual} (needs ${t.op} ${t.value})`);

function worstRealtimeP99(r: RunResult): number | null {
  const g = r.groups.realtime;
  if (!g) return null;
  const xs = [g.latency.broadcast?.p99, g.latency.presence?.p99, g.latency.comments?.p99].filter((v): v is number => typeof v === 'number');
  return xs.length ? Math.max(...xs) : null;
}

export function gatherFacts(scenarios: readonly ScenarioRecord[], degradation: { sse?: DegradationRecord; realtime?: DegradationRecord }, fault: FaultComparison | { skipped: string }, projectedUsers: number): SpikeFacts {
  const sse = valid(scenarios, 'sse').map((s) => ({
    id: s.id,
    connections: s.load,
    passed: s.result.passed,
    p99: sseUserLatency(s.result.groups.sse)?.p99 ?? null,
    stability: s.result.groups.sse?.stabilityPct ?? null,
    failures: failuresOf(s.result),
  }));
  const rt = valid(scenarios, 'realtime').map((s) => ({
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
    const soloSse = valid(scenarios, 'sse').find((s) => s.load === h.config.sse?.connections);
    const soloRt = valid(scenarios, 'realtime').find((s) => s.result.config.realtime?.projects === h.config.realtime?.projects && s.result.config.realtime?.usersPerProject === h.config.realtime?.usersPerProject);
    hybrid = {
      id: hybridRun.id,
      passed: h.passed,
      sseP99: sseUserLatency(h.groups.sse)?.p99 ?? null,
      sseSoloP99: sseUserLatency(soloSse?.result.groups.sse)?.p99 ?? null,
      realtimeP99: worstRealtimeP99(h),
      realtimeSoloP99: soloRt ? worstRealtimeP99(soloRt.result) : null,
    };
  }
  return {
    sseMatrix: sse,
    realtimeMatrix: rt,
    hybrid,
    fault: 'skipped' in fault || !fault.valid ? null : { unaffected: fault.unaffected, failedSubsystem: fault.failedSubsystem, deliveredAfterRecovery: fault.failedSide.deliveredAfterRecovery },
    sseLastPass: degradation.sse?.lastPass ?? null,
    sseFirstFail: degradation.sse?.firstFail ?? null,
    realtimeLastPass: degradation.realtime?.lastPass ?? null,
    realtimeFirstFail: degradation.realtime?.firstFail ?? null,
    sseStoppedBy: degradation.sse?.stoppedBy,
    realtimeStoppedBy: degradation.realtime?.stoppedBy,
    projectedUsers,
    bandwidth: heaviest(scenarios),
    reconnectsObserved: scenarios.reduce((a, s) => a + (s.result.groups.sse?.reconnects ?? 0) + (s.result.groups.realtime?.reconnects ?? 0), 0),
    invalidRuns: scenarios.filter((s) => !s.result.valid).length,
  };
}

function heaviest(scenarios: readonly ScenarioRecord[]): SpikeFacts['bandwidth'] {
  let best: SpikeFacts['bandwidth'] = null;
  for (const s of valid(scenarios, 'sse', 'realtime', 'hybrid')) {
    const kbps = s.result.metrics['bandwidth_per_connection_kbps'];
    if (typeof kbps !== 'number' || (best && kbps <= best.kbps)) continue;
    const rt = s.result.config.realtime;
    best = {
      id: s.id,
      kbps,
      usersPerChannel: rt?.usersPerProject ?? null,
      presenceIntervalS: rt?.presence && rt.presenceIntervalMs > 0 ? rt.presenceIntervalMs / 1000 : null,
      ratePerConnection: s.result.config.sse?.ratePerStream ?? null,
    };
  }
  return best;
}

/** The seed's network budget per connection. */
export const BANDWIDTH_BUDGET_KBPS = 1;

/** True when `during` stays within the interference budget of `solo`. */
export function withinInterferenceBudget(solo: number | null, during: number | null): boolean | null {
  if (solo === null || during === null) return null;
  return during <= Math.max(solo * INTERFERENCE_FACTOR, solo + INTERFERENCE_SLACK_MS);
}

const fmt = (v: number | null, unit = ''): string => (v === null ? 'n/a' : `${Math.round(v * 100) / 100}${unit}`);

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
      rule: 'P1: SSE carries progress if every SSE scenario of the seed matrix passes all acceptance criteria.',
      evidence: f.sseMatrix.map((s) => `${s.id}: p99 ${fmt(s.p99, ' ms')}, stability ${fmt(s.stability, '%')}`),
    });
  } else if (f.sseMatrix.length) {
    primary.push({
      statement: `Do not rely on SSE alone for progress at the tested scale: ${sseFailed.map((s) => s.id).join(', ')} failed; carry progress over the Realtime channel (broadcast) until the SSE path is fixed.`,
      rule: 'P1: SSE carries progress only if every SSE scenario of the seed matrix passes; otherwise progress moves to the transport that passed.',
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

  // P3 — one process for both, or separate.
  if (f.hybrid) {
    const sseOk = withinInterferenceBudget(f.hybrid.sseSoloP99, f.hybrid.sseP99);
    const rtOk = withinInterferenceBudget(f.hybrid.realtimeSoloP99, f.hybrid.realtimeP99);
    const together = f.hybrid.passed && sseOk !== false && rtOk !== false;
    primary.push({
      statement: together
        ? 'Run both in one gateway (hybrid): together they met every criterion and neither side slowed the other beyond the interference budget.'
        : 'Run SSE and Realtime in separate gateway processes: together they ' + (f.hybrid.passed ? 'interfered beyond the budget.' : 'failed a criterion.'),
      rule: `P3: one process for both if the hybrid run passes and each side's p99 stays within max(${INTERFERENCE_FACTOR}× its solo p99, solo + ${INTERFERENCE_SLACK_MS} ms).`,
      evidence: [`SSE p99 solo ${fmt(f.hybrid.sseSoloP99, ' ms')} → hybrid ${fmt(f.hybrid.sseP99, ' ms')} (${sseOk === null ? 'no solo run to compare' : sseOk ? 'within budget' : 'over budget'})`, `Realtime p99 solo ${fmt(f.hybrid.realtimeSoloP99, ' ms')} → hybrid ${fmt(f.hybrid.realtimeP99, ' ms')} (${rtOk === null ? 'no solo run to compare' : rtOk ? 'within budget' : 'over budget'})`, `hybrid run ${f.hybrid.passed ? 'passed' : 'failed'}`],
    });
  }

  // S1 — per-instance operating limits from the ramps.
  const recSse = f.sseLastPass === null ? null : Math.floor(f.sseLastPass * RECOMMENDED_SHARE);
  const recRt = f.realtimeLastPass === null ? null : Math.floor(f.realtimeLastPass * RECOMMENDED_SHARE);
  const lowerBound = (firstFail: number | null, stoppedBy: string | undefined, what: string): string | undefined =>
    firstFail === null && stoppedBy ? `the ${what} cap is a lower bound: its ramp ${stoppedBy === 'generator-limit' ? 'stopped when the generator (or the shared machine) could no longer keep up' : 'reached its largest step'} before the gateway degraded` : undefined;
  const bounds = [lowerBound(f.sseFirstFail, f.sseStoppedBy, 'SSE'), lowerBound(f.realtimeFirstFail, f.realtimeStoppedBy, 'Realtime')].filter((x): x is string => !!x);
  scaling.push({
    statement: `Cap each gateway instance at ${recSse ?? 'n/a'} SSE connections and ${recRt ?? 'n/a'} Realtime users on hardware like this machine; alert before the cap (connection pooling and admission control at the gateway).${bounds.length ? ` Note: ${bounds.join('; ')}.` : ''}`,
    rule: `S1: operating limit = ${RECOMMENDED_SHARE * 100}% of the highest ramp load that met every criterion.`,
    evidence: [`SSE: last pass ${fmt(f.sseLastPass)}, first fail ${fmt(f.sseFirstFail)}`, `Realtime: last pass ${fmt(f.realtimeLastPass)}, first fail ${fmt(f.realtimeFirstFail)}`],
  });

  // S2 — vertical or horizontal at the projected number of users.
  if (recSse !== null && recRt !== null && recSse > 0 && recRt > 0) {
    // Both transports share a process: each user uses its share of each cap.
    const perInstanceUsers = Math.floor(1 / (1 / recSse + 1 / recRt));
    const instances = Math.max(1, Math.ceil(f.projectedUsers / Math.max(1, perInstanceUsers)));
    scaling.push({
      statement:
        instances === 1
          ? `One instance serves the projected ${f.projectedUsers} concurrent users (capacity ≈ ${perInstanceUsers} users with one SSE stream and one Realtime socket each); scale vertically first.`
          : `Scale horizontally: ${instances} instances for ${f.projectedUsers} concurrent users (≈ ${perInstanceUsers} per instance), behind a load balancer, with the Redis or NATS bus so a message published on one instance reaches subscribers on all of them.`,
      rule: 'S2: users per instance = 1 / (1/SSE cap + 1/Realtime cap); instances = ⌈users / users per instance⌉; more than one instance needs the shared bus.',
      evidence: [`SSE cap ${recSse}, Realtime cap ${recRt}, projected users ${f.projectedUsers}`],
    });
  } else {
    scaling.push({
      statement: 'Per-instance capacity is unknown (a ramp did not produce a passing step); measure again before sizing.',
      rule: 'S2 needs both operating limits.',
      evidence: [`SSE cap ${fmt(recSse)}, Realtime cap ${fmt(recRt)}`],
    });
  }

  // S3 — browser connection limits.
  scaling.push({
    statement: 'Multiplex progress streams: one EventSource per tab on /v1/stream?topic=a&topic=b (or HTTP/2) rather than one per content item; browsers allow 6 HTTP/1.1 connections per origin.',
    rule: 'S3: the seed lists the 6-connections-per-domain browser limit as a high risk; the multi-topic stream removes it without more server connections.',
    evidence: ['seed risk 1 (Browser Connection Limits)'],
  });

  // S4 — channel size.
  const bySize = [...f.realtimeMatrix].filter((s) => s.presenceP99 !== null).sort((a, b) => a.usersPerProject - b.usersPerProject);
  if (bySize.length >= 2) {
    const small = bySize[0]!;
    const large = bySize[bySize.length - 1]!;
    const grows = (large.presenceP99 ?? 0) > (small.presenceP99 ?? 0) * 1.5 + 5;
    scaling.push({
      statement: grows
        ? `Keep channels small: presence latency grew from ${fmt(small.presenceP99, ' ms')} at ${small.usersPerProject} users/channel to ${fmt(large.presenceP99, ' ms')} at ${large.usersPerProject}; shard large projects into several channels.`
        : `Channel size up to ${large.usersPerProject} users did not change presence latency materially (${fmt(small.presenceP99, ' ms')} → ${fmt(large.presenceP99, ' ms')}); one channel per project is fine at this size.`,
      rule: 'S4: shard channels if presence p99 at the largest tested channel exceeds 1.5× (+5 ms) the smallest channel\'s.',
      evidence: bySize.map((s) => `${s.id}: ${s.usersPerProject} users/channel, presence p99 ${fmt(s.presenceP99, ' ms')}`),
    });
  }

  // S5 — bandwidth per connection.
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
        ? `Budget bandwidth: ${bw.id} needed ${Math.round(bw.kbps * 100) / 100} KB/s per connection, ${Math.round(factor * 10) / 10}× the seed's ${BANDWIDTH_BUDGET_KBPS} KB/s; to fit it, ${how}.`
        : `Bandwidth fits the seed's budget: the heaviest run (${bw.id}) used ${Math.round(bw.kbps * 100) / 100} KB/s per connection, under ${BANDWIDTH_BUDGET_KBPS} KB/s.`,
      rule: `S5: per-connection bandwidth must stay under ${BANDWIDTH_BUDGET_KBPS} KB/s; when it does not, the message rate of the heaviest run is scaled down by the excess factor.`,
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
    fallbacks.push({
      statement: f.fault.unaffected
        ? `Degrade gracefully on a ${f.fault.failedSubsystem} outage: progress over SSE kept its solo figures while the ${f.fault.failedSubsystem} was down, so keep SSE independent of the database; comments fail fast and ${f.fault.deliveredAfterRecovery ? 'their change feed recovered after the database returned' : 'must be retried by the client after recovery'}.`
        : `Isolate SSE from the ${f.fault.failedSubsystem}: progress streams degraded while it was down; move database work off the gateway's event loop or into a separate process.`,
      rule: 'F2: the surviving side must stay within its solo interference budget during the fault.',
      evidence: [`fault run: SSE ${f.fault.unaffected ? 'within' : 'outside'} budget; change feed after recovery: ${f.fault.deliveredAfterRecovery === null ? 'not observed' : f.fault.deliveredAfterRecovery ? 'delivering' : 'not delivering'}`],
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
