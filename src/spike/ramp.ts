// One transport's degradation ramp in a spike: steps of growing load on a fresh gateway
// process, searched by searchDegradation and judged on the transport's criteria
// (verdictOf). A step the previous step's measured generator cost says could only be
// INVALID is not run; an INVALID step is retried once where the profile allows (passing
// contention on a shared machine).
import type { EmbeddedGateway } from '../load/embedded-gateway.js';
import { DEFAULT_GENERATOR_LIMITS, type GeneratorLimits } from '../load/spec.js';
import { SEED_THRESHOLDS, type Threshold } from '../load/thresholds.js';
import { sseUserLatency, type RunResult } from '../load/result.js';
import { expectedMessagesPerSec, forecast, type GeneratorCost } from '../load/generator-cost.js';
import { describeSearch, searchDegradation, type StepOutcome } from './degradation.js';
import { RAMP_CRITERIA, rampRealtimeLoad, rampSseLoad, rampStepTiming, type ProfileDef } from './matrix.js';
import type { SpikeRuns } from './runs.js';
import type { DegradationRecord, ScenarioRecord } from './model.js';

/** Machine CPU at or above this while the gateway used under GATEWAY_BOUND_PCT of a core: the gateway was starved, not saturated. */
export const MACHINE_SATURATED_PCT = 95;
export const GATEWAY_BOUND_PCT = 80;

/**
 * Why a failing step says nothing about the gateway, if it does not: the machine was
 * saturated while the gateway itself was far from a full core — the generator (or something
 * else) took the CPU the gateway needed, so the failure is contention, not a limit.
 */
export function contention(r: RunResult): string | null {
  const machine = r.server.machineCpuMeanPct;
  const gateway = r.server.steadyCpuPct;
  if (machine === null || gateway === null || machine < MACHINE_SATURATED_PCT || gateway >= GATEWAY_BOUND_PCT) return null;
  return `the machine was saturated (${machine}% CPU) while the gateway used ${gateway}% of a core: the generator and the gateway competed for the cores, so the failure is not the gateway's limit — run the generator elsewhere (--agents)`;
}

/** A ramp step's verdict on its criteria: INVALID when the generator could not vouch for it or the machine starved the gateway. */
export function verdictOf(r: RunResult, criteria: readonly string[]): { verdict: StepOutcome['verdict']; failures: string[] } {
  if (!r.valid) return { verdict: 'invalid', failures: r.generator.reasons };
  const failed = r.thresholds.filter((t) => criteria.includes(t.metric) && (t.status === 'fail' || t.status === 'no-data'));
  if (!failed.length) return { verdict: 'pass', failures: [] };
  const contended = contention(r);
  if (contended) return { verdict: 'invalid', failures: [contended] };
  return { verdict: 'fail', failures: failed.map((t) => `${t.metric} ${t.actual ?? 'no data'} (needs ${t.op} ${t.value})`) };
}

/** What a ramp runs on and where its steps go. */
export interface RampContext {
  profile: ProfileDef;
  settings: { thresholds?: Threshold[]; generator?: GeneratorLimits };
  /** The embedded gateway, restarted before the ramp; undefined for an external target. */
  embedded: EmbeddedGateway | undefined;
  runs: SpikeRuns;
  /** Every measured step is recorded here as a scenario. */
  scenarios: ScenarioRecord[];
  log: (line: string) => void;
}

export async function runRamp(transport: 'sse' | 'realtime', { profile, settings, embedded, runs, scenarios, log }: RampContext): Promise<DegradationRecord> {
  // Each ramp starts on a fresh gateway process, so its RSS-per-connection slope is not
  // bent by memory the previous scenarios left behind (or the GC handing it back).
  if (embedded) {
    log(`restarting the embedded gateway before the ${transport} ramp`);
    await embedded.restart();
  }
  const ramp = transport === 'sse' ? profile.rampSse : profile.rampRealtime;
  const criteria = RAMP_CRITERIA[transport];
  const steps: DegradationRecord['steps'] = [];
  /** What the generator cost in the last valid step: forecasts the next one (preflight) and says what measuring further would take. */
  const last: { cost: { cost: GeneratorCost; workers: number; hosts: number; messagesPerSecPerConnection: number | null } | null } = { cost: null };
  const search = await searchDegradation(
    async (load) => {
      const id = `ramp-${transport}-${load}`;
      const timing = rampStepTiming(ramp, load);
      const def = { id, ...timing, ...(transport === 'sse' ? { sse: rampSseLoad(load) } : { realtime: rampRealtimeLoad(profile, load) }) };
      // Preflight: from the previous step's measured cost, a step whose steady message load
      // alone would exceed what the generator may use is not run — it could only be INVALID.
      const lastCost = last.cost;
      if (lastCost) {
        const f = forecast(def, runs.poolSize, { [transport]: lastCost.cost });
        const limit = (settings.generator ?? DEFAULT_GENERATOR_LIMITS).maxCpuPct;
        if (f.steadyCpuPct > limit) {
          const failures = [`not run: at the previous step's measured cost the generator's ${runs.poolSize} worker(s) would need about ${f.steadyCpuPct}% of a core each in steady state (limit ${limit}%) — the generator's capacity, not the gateway's`];
          log(`${id}: ${failures[0]}`);
          steps.push({ load, scenarioId: id, verdict: 'invalid', failures, p99Ms: null, connectP99Ms: null });
          return { load, verdict: 'invalid' as const, failures };
        }
      }
      const stepThresholds = (settings.thresholds ?? [...SEED_THRESHOLDS]).filter((t) => criteria.includes(t.metric));
      const costHint = lastCost ? { [transport]: lastCost.cost } : undefined;
      let result = await runs.run(def, undefined, stepThresholds, costHint);
      let judged = result ? verdictOf(result, criteria) : undefined;
      // An invalid step says nothing about the server; on a shared machine the cause is often
      // passing contention, so it is measured once more before the search gives up.
      if ((!result || judged?.verdict === 'invalid') && profile.retryInvalidSteps) {
        log(`${id}: retrying once after ${result ? `an invalid run (${judged?.failures[0] ?? ''})` : 'a run that could not complete'}`);
        result = await runs.run(def, undefined, stepThresholds, costHint);
        judged = result ? verdictOf(result, criteria) : undefined;
        result?.notes.push('this ramp step was run twice: the first attempt was INVALID or could not complete');
      }
      if (!result || !judged) {
        const failures = [`the run could not be measured: ${runs.lastError}`];
        steps.push({ load, scenarioId: id, verdict: 'invalid', failures, p99Ms: null, connectP99Ms: null });
        return { load, verdict: 'invalid' as const, failures };
      }
      scenarios.push({ id, title: `${transport === 'sse' ? 'SSE' : 'Realtime'} ramp step: ${load} ${transport === 'sse' ? 'connections' : 'users'}`, category: transport === 'sse' ? 'ramp-sse' : 'ramp-realtime', load, result });
      const { verdict, failures } = judged;
      if (result.valid) {
        const msgs = expectedMessagesPerSec(def);
        last.cost = { cost: result.generator.cost, workers: result.generator.workers, hosts: result.generator.hosts.length, messagesPerSecPerConnection: load > 0 ? (transport === 'sse' ? msgs.sse : msgs.realtime) / load : null };
      }
      const g = transport === 'sse' ? result.groups.sse : result.groups.realtime;
      const p99 = transport === 'sse' ? (sseUserLatency(g)?.p99 ?? null) : Math.max(g?.latency.presence?.p99 ?? 0, g?.latency.broadcast?.p99 ?? 0) || null;
      // For Realtime the user-visible wait is the subscription (connect + join).
      const waitP99 = transport === 'sse' ? (g?.connect.p99 ?? null) : (result.groups.realtime?.subscribe?.p99 ?? null);
      steps.push({ load, scenarioId: id, verdict, failures, p99Ms: p99, connectP99Ms: waitP99 });
      return { load, verdict, failures };
    },
    { start: ramp.start, factor: ramp.factor, max: ramp.max, refine: ramp.refine, maxSteps: ramp.maxSteps, resolution: Math.max(10, Math.round(ramp.start / 4)) },
  );
  const unit = transport === 'sse' ? 'connections' : 'users';
  const { strength, finding } = describeSearch(search, unit, ramp.max);
  return {
    transport,
    unit,
    criteria,
    steps,
    lastPass: search.lastPass,
    firstFail: search.firstFail,
    stoppedBy: search.stoppedBy,
    max: ramp.max,
    strength,
    finding,
    openRate: ramp.openRate,
    holdMs: ramp.holdMs,
    generator: last.cost ? { workers: last.cost.workers, hosts: last.cost.hosts, cpuMsPerConnect: last.cost.cost.cpuMsPerConnect, cpuUsPerMessage: last.cost.cost.cpuUsPerMessage, messagesPerSecPerConnection: last.cost.messagesPerSecPerConnection } : null,
  };
}
