// `fanout spike`: runs the seed's whole matrix against an embedded gateway (started as a
// child process, with a dedicated PostgreSQL it can lose) or a given loopback target, then
// the failure scenario, the degradation ramps and the optional soak, and assembles the
// report: the seed's ScalabilityLimits and PerformanceBenchmarks filled from measured
// values, the architecture decision by stated rules, and the cost projection.
import { cpus, loadavg, totalmem } from 'node:os';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runLoad } from '../load/coordinator.js';
import type { LiveStatus } from '../load/live-status.js';
import { MAX_SOCKETS_PER_WORKER, WorkerPool } from '../load/pool.js';
import { startEmbeddedGateway, type EmbeddedGateway } from '../load/embedded-gateway.js';
import { createFanoutStreams, type Target } from '../load/target.js';
import { DEFAULT_GENERATOR_LIMITS, type FaultStep, type GeneratorLimits, type RunSpec } from '../load/spec.js';
import { SEED_THRESHOLDS, type Threshold } from '../load/thresholds.js';
import { sseUserLatency, type RunResult } from '../load/result.js';
import { describeSearch, searchDegradation, type StepOutcome } from './degradation.js';
import { compareToBaseline, measureSpread } from './noise.js';
import { openGeneratorPool } from '../load/agent-client.js';
import { expectedMessagesPerSec, forecast, type GeneratorCost } from '../load/generator-cost.js';
import { PROFILES, RAMP_CRITERIA, matrixWithRepeats, rampRealtimeLoad, rampSseLoad, rampStepTiming, soak, type Profile, type ScenarioDef } from './matrix.js';
import { computeBenchmarks, computeLimits } from './limits.js';
import { decide, gatherFacts, interferenceBudget, worstRealtimeP99 } from './decision.js';
import { DEFAULT_COST_ASSUMPTIONS, projectCost, type CostInputs } from './cost.js';
import { dedicatedPostgresUnavailable, startDedicatedPostgres, type DedicatedPostgres } from './postgres.js';
import type { DegradationRecord, FaultComparison, ScenarioRecord, SpikeReport, Spread } from './model.js';

const exec = promisify(execFile);
const FANOUT_BIN = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));

export interface SpikeOptions {
  profile: Profile;
  soakS?: number;
  /** External target; when absent an embedded gateway is started. */
  target?: Target;
  /** Shell commands that stop and restart the external target's database (loopback targets only). */
  faultCommands?: { stop: string; start: string };
  thresholds?: Threshold[];
  generator?: GeneratorLimits;
  /** Cost assumptions; message rates default to what the spike measured. */
  cost?: Partial<Omit<CostInputs, 'usersPerInstance'>>;
  /** Only run scenarios whose id matches (debugging); ramps are `ramp-sse`, `ramp-realtime`. */
  only?: RegExp;
  /** Generators on other machines (`fanout load agent`), with their shared token; local workers then default to none. */
  agents?: string[];
  agentToken?: string;
  /** Local generator processes beside the agents (default: none with agents, enough for the largest step without). */
  localWorkers?: number;
  /** Runs of each noise baseline (default: the profile's). */
  repeats?: number;
  onStatus?(s: LiveStatus): void;
  log?(line: string): void;
}

interface Environment {
  target: Target;
  embedded?: EmbeddedGateway;
  db?: DedicatedPostgres;
  database: string;
  notes: string[];
  /** Stop and start the database; undefined when this target's database cannot be failed. */
  dbFault?: { stop(): Promise<void>; start(): Promise<void>; method: string };
}

async function gatewayMigrate(url: string): Promise<string> {
  try {
    await exec(process.execPath, [FANOUT_BIN, 'migrate'], { env: { ...process.env, DATABASE_URL: url }, timeout: 120_000 });
    return 'migrated with `fanout migrate`';
  } catch (err) {
    return `\`fanout migrate\` did not run (${((err as { stderr?: string }).stderr ?? (err as Error).message).split('\n')[0]})`;
  }
}

async function prepareEnvironment(opts: SpikeOptions, log: (l: string) => void): Promise<Environment> {
  const notes: string[] = [];
  if (opts.target) {
    const env: Environment = { target: opts.target, database: 'the target’s own', notes };
    if (opts.faultCommands) {
      const cmds = opts.faultCommands;
      env.dbFault = { stop: async () => void (await exec('sh', ['-c', cmds.stop])), start: async () => void (await exec('sh', ['-c', cmds.start])), method: `\`${cmds.stop}\`, later \`${cmds.start}\`` };
    }
    return env;
  }
  let db: DedicatedPostgres | undefined;
  const why = dedicatedPostgresUnavailable();
  if (why) notes.push(`No dedicated PostgreSQL for the failure scenario: ${why}. The gateway uses its embedded database.`);
  else {
    log('starting a dedicated PostgreSQL for the failure scenario');
    db = await startDedicatedPostgres();
    notes.push(`Dedicated PostgreSQL on port ${db.port}: ${await gatewayMigrate(db.url)}.`);
  }
  log('starting the embedded gateway');
  let embedded: EmbeddedGateway;
  try {
    embedded = await startEmbeddedGateway({ env: db ? { DATABASE_URL: db.url } : {} });
  } catch (err) {
    await db?.destroy();
    throw err;
  }
  const env: Environment = { target: embedded.target, embedded, db, database: db ? `dedicated PostgreSQL (${db.url})` : 'embedded (PGlite)', notes };
  if (db) env.dbFault = { stop: () => db.stop(), start: () => db.start(), method: '`pg_ctl stop -m immediate` on the dedicated PostgreSQL (a crash), later `pg_ctl start`' };
  return env;
}

function specFor(def: Pick<ScenarioDef, 'id' | 'durationMs' | 'rampMs' | 'sse' | 'realtime'>, env: Environment, opts: SpikeOptions, faults?: FaultStep[], thresholds?: Threshold[]): RunSpec {
  return {
    name: def.id,
    target: env.target,
    durationMs: def.durationMs,
    rampMs: def.rampMs,
    pattern: 'gradual',
    sse: def.sse,
    realtime: def.realtime,
    thresholds: thresholds ?? opts.thresholds ?? [...SEED_THRESHOLDS],
    generator: opts.generator ?? DEFAULT_GENERATOR_LIMITS,
    faults,
    drainMs: PROFILES[opts.profile].drainMs,
  };
}

function machine(): SpikeReport['machine'] {
  const c = cpus();
  return { cpus: c.length, cpuModel: c[0]?.model ?? 'unknown', memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10, node: process.version, platform: `${process.platform} ${process.arch}`, loadAverage: loadavg().map((v) => Math.round(v * 100) / 100) };
}

/** A latency row of the failure comparison: degraded only when over the interference budget AND beyond the solo runs' spread. */
function latencyRow(metric: string, solo: Spread, duringFault: number | null): FaultComparison['rows'][number] {
  const c = compareToBaseline(solo, duringFault, interferenceBudget);
  return { metric, solo: solo.median, duringFault, verdict: c.verdict === 'worse' ? 'degraded' : c.verdict === 'not worse' ? 'unaffected' : 'cannot tell', why: c.why };
}

function compareFault(fault: ScenarioRecord, scenarios: readonly ScenarioRecord[], soloId: string, method: string, restoreAtMs: number): FaultComparison {
  const f = fault.result;
  const solo = scenarios.find((x) => x.id === soloId && x.result.valid);
  const s = solo?.result;
  const rows: FaultComparison['rows'] = [];
  const sseF = f.groups.sse;
  const sseS = s?.groups.sse;
  rows.push(latencyRow('SSE delivery p99 (ms)', measureSpread(scenarios, soloId, 'SSE delivery p99', (r) => sseUserLatency(r.groups.sse)?.p99), sseUserLatency(sseF)?.p99 ?? null));
  rows.push(latencyRow('SSE delivery p50 (ms)', measureSpread(scenarios, soloId, 'SSE delivery p50', (r) => sseUserLatency(r.groups.sse)?.p50), sseUserLatency(sseF)?.p50 ?? null));
  rows.push({ metric: 'SSE stability (%)', solo: sseS?.stabilityPct ?? null, duringFault: sseF?.stabilityPct ?? null, verdict: (sseF?.stabilityPct ?? 0) > 99 ? 'unaffected' : 'degraded' });
  rows.push({ metric: 'SSE messages lost', solo: sseS?.deliveryTotal.lost ?? null, duringFault: sseF?.deliveryTotal.lost ?? null, verdict: (sseF?.deliveryTotal.lost ?? 0) <= (sseS?.deliveryTotal.lost ?? 0) ? 'unaffected' : 'degraded' });
  rows.push({ metric: 'SSE connections established (%)', solo: sseS?.connectSuccessPct ?? null, duringFault: sseF?.connectSuccessPct ?? null, verdict: (sseF?.connectSuccessPct ?? 0) >= 100 ? 'unaffected' : 'degraded' });
  rows.push({ metric: 'SSE drops', solo: sseS?.drops ?? null, duringFault: sseF?.drops ?? null, verdict: (sseF?.drops ?? 0) <= (sseS?.drops ?? 0) ? 'unaffected' : 'degraded' });
  const restoreS = restoreAtMs / 1000;
  const afterRestore = f.timeline.filter((r) => r.t >= restoreS).reduce((a, r) => a + r.commentsReceived, 0);
  const pub = f.publish.comments;
  const notes: string[] = [];
  const rt = f.groups.realtime;
  if (rt) notes.push(`Realtime during the run: presence p99 ${rt.latency.presence?.p99 ?? 'n/a'} ms, broadcast p99 ${rt.latency.broadcast?.p99 ?? 'n/a'} ms, stability ${rt.stabilityPct}%`);
  if (pub) notes.push(`comment inserts: ${pub.ok} accepted, ${pub.failed} failed (${Object.entries(pub.errors).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'})`);
  return {
    scenarioId: fault.id,
    soloScenarioId: solo?.id ?? 'none',
    failedSubsystem: 'database',
    method,
    survivor: 'sse',
    rows,
    unaffected: rows.every((r) => r.verdict !== 'degraded'),
    valid: f.valid && !!s?.valid,
    failedSide: {
      errorsDuringFault: { ...(rt?.errors ?? {}), ...Object.fromEntries(Object.entries(pub?.errors ?? {}).map(([k, v]) => [`comment_insert_${k}`, v])) },
      commentsPublished: pub?.ok ?? 0,
      commentsFailed: pub?.failed ?? 0,
      deliveredAfterRecovery: pub ? afterRestore > 0 : null,
      notes,
    },
  };
}

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

export function verdictOf(r: RunResult, criteria: readonly string[]): { verdict: StepOutcome['verdict']; failures: string[] } {
  if (!r.valid) return { verdict: 'invalid', failures: r.generator.reasons };
  const failed = r.thresholds.filter((t) => criteria.includes(t.metric) && (t.status === 'fail' || t.status === 'no-data'));
  if (!failed.length) return { verdict: 'pass', failures: [] };
  const contended = contention(r);
  if (contended) return { verdict: 'invalid', failures: [contended] };
  return { verdict: 'fail', failures: failed.map((t) => `${t.metric} ${t.actual ?? 'no data'} (needs ${t.op} ${t.value})`) };
}

export async function runSpike(opts: SpikeOptions): Promise<SpikeReport> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  const profile = PROFILES[opts.profile];
  const env = await prepareEnvironment(opts, log);
  const scenarios: ScenarioRecord[] = [];
  const defs = matrixWithRepeats(opts.profile, opts.repeats).filter((d) => !opts.only || opts.only.test(d.repeatOf ?? d.id));
  const biggest = Math.max(2, Math.ceil(Math.max(profile.rampSse.max, profile.rampRealtime.max) / MAX_SOCKETS_PER_WORKER));
  const openPool = (): Promise<WorkerPool> =>
    opts.agents?.length ? openGeneratorPool({ localWorkers: opts.localWorkers ?? 0, agents: opts.agents, token: opts.agentToken }) : WorkerPool.start(opts.localWorkers ?? biggest);
  let pool: WorkerPool;
  try {
    pool = await openPool();
  } catch (err) {
    await env.embedded?.stop();
    await env.db?.destroy();
    throw err;
  }
  const prepareSse = env.target.kind === 'fanout' ? async (n: number) => ({ streams: await createFanoutStreams(env.target, n, `spk${Date.now().toString(36)}`) }) : undefined;
  const errors: SpikeReport['errors'] = [];
  /** One run; a run that cannot complete (a worker stuck past its deadline) is recorded and the pool replaced, so the spike carries on. */
  const run = async (def: Pick<ScenarioDef, 'id' | 'durationMs' | 'rampMs' | 'sse' | 'realtime'>, faults?: FaultStep[], thresholds?: Threshold[], generatorCost?: Partial<Record<'sse' | 'realtime', GeneratorCost>>): Promise<RunResult | undefined> => {
    let r: RunResult;
    try {
      r = await runLoad(specFor(def, env, opts, faults, thresholds), { pool, prepareSse, baselineMs: profile.baselineMs, onStatus: opts.onStatus, generatorCost });
      log(`${def.id}: ${!r.valid ? `INVALID (${r.generator.reasons[0] ?? 'see the report'})` : r.passed ? 'passed' : 'failed'}`);
    } catch (err) {
      const message = (err as Error).message;
      log(`${def.id}: could not be measured: ${message}`);
      errors.push({ scenario: def.id, message });
      await pool.close();
      pool = await openPool();
      return undefined;
    }
    // An agent lost in this run is reconnected before the next one (or the spike stops, saying which).
    const lost = pool.hostInfo().filter((h) => h.lost);
    if (lost.length) {
      log(`reconnecting the generator after losing ${lost.map((h) => h.name).join(', ')}`);
      await pool.close();
      pool = await openPool();
    }
    return r;
  };
  const record = (def: ScenarioDef, result: RunResult): ScenarioRecord => ({
    id: def.id,
    title: def.title,
    category: def.category,
    seedItem: def.seedItem,
    ...(def.repeatOf ? { repeatOf: def.repeatOf } : {}),
    load: (def.sse?.connections ?? 0) + (def.realtime ? def.realtime.projects * def.realtime.usersPerProject : 0),
    result,
  });
  let fault: SpikeReport['fault'] = { skipped: 'not run' };
  const degradation: SpikeReport['degradation'] = {};
  try {
    for (const def of defs) {
      if (def.category === 'fault') {
        if (!env.dbFault) {
          fault = { skipped: env.embedded ? 'no dedicated PostgreSQL could be started, so the database cannot be failed' : 'the target’s database cannot be failed from here (give --fault-stop-cmd and --fault-start-cmd for a loopback target)' };
          continue;
        }
        const dbf = env.dbFault;
        const stopAt = Math.round(def.durationMs / 3);
        const restoreAt = Math.round((2 * def.durationMs) / 3);
        const faults: FaultStep[] = [
          { atMs: stopAt, label: `database stopped: ${dbf.method.split(',')[0]}`, run: () => dbf.stop() },
          { atMs: restoreAt, label: 'database started again', run: () => dbf.start() },
        ];
        const result = await run(def, faults);
        if (!result) {
          fault = { skipped: `the failure run could not be measured: ${errors[errors.length - 1]?.message}` };
          // The database may still be stopped.
          await dbf.start().catch(() => undefined);
          continue;
        }
        const rec = record(def, result);
        scenarios.push(rec);
        fault = compareFault(rec, scenarios, def.soloId ?? 'sse-100', dbf.method, restoreAt);
        continue;
      }
      const result = await run(def);
      if (result) scenarios.push(record(def, result));
    }

    for (const transport of ['sse', 'realtime'] as const) {
      if (opts.only && !opts.only.test(`ramp-${transport}`)) continue;
      // Each ramp starts on a fresh gateway process, so its RSS-per-connection slope is not
      // bent by memory the previous scenarios left behind (or the GC handing it back).
      if (env.embedded) {
        log(`restarting the embedded gateway before the ${transport} ramp`);
        await env.embedded.restart();
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
            const f = forecast(def, pool.size, { [transport]: lastCost.cost });
            const limit = (opts.generator ?? DEFAULT_GENERATOR_LIMITS).maxCpuPct;
            if (f.steadyCpuPct > limit) {
              const failures = [`not run: at the previous step's measured cost the generator's ${pool.size} worker(s) would need about ${f.steadyCpuPct}% of a core each in steady state (limit ${limit}%) — the generator's capacity, not the gateway's`];
              log(`${id}: ${failures[0]}`);
              steps.push({ load, scenarioId: id, verdict: 'invalid', failures, p99Ms: null, connectP99Ms: null });
              return { load, verdict: 'invalid' as const, failures };
            }
          }
          const stepThresholds = (opts.thresholds ?? [...SEED_THRESHOLDS]).filter((t) => criteria.includes(t.metric));
          const costHint = lastCost ? { [transport]: lastCost.cost } : undefined;
          let result = await run(def, undefined, stepThresholds, costHint);
          let judged = result ? verdictOf(result, criteria) : undefined;
          // An invalid step says nothing about the server; on a shared machine the cause is often
          // passing contention, so it is measured once more before the search gives up.
          if ((!result || judged?.verdict === 'invalid') && profile.retryInvalidSteps) {
            log(`${id}: retrying once after ${result ? `an invalid run (${judged?.failures[0] ?? ''})` : 'a run that could not complete'}`);
            result = await run(def, undefined, stepThresholds, costHint);
            judged = result ? verdictOf(result, criteria) : undefined;
            result?.notes.push('this ramp step was run twice: the first attempt was INVALID or could not complete');
          }
          if (!result || !judged) {
            const failures = [`the run could not be measured: ${errors[errors.length - 1]?.message}`];
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
      degradation[transport] = {
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

    if (opts.soakS && (!opts.only || opts.only.test('soak'))) {
      const def = soak(opts.profile, opts.soakS);
      const result = await run(def);
      if (result) scenarios.push(record(def, result));
    }
  } finally {
    await pool.close();
    await env.embedded?.stop();
    await env.db?.destroy();
  }
  const generator = { agents: opts.agents ?? [], localWorkers: opts.agents?.length ? (opts.localWorkers ?? 0) : (opts.localWorkers ?? biggest) };
  return assembleReport({ opts, env, scenarios, fault, degradation, started, errors, generator });
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

function assembleReport(a: { opts: SpikeOptions; env: Environment; scenarios: ScenarioRecord[]; fault: SpikeReport['fault']; degradation: SpikeReport['degradation']; started: number; errors: SpikeReport['errors']; generator: NonNullable<SpikeReport['generator']> }): SpikeReport {
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
