// `fanout spike`: runs the seed's whole matrix against an embedded gateway (started as a
// child process, with a dedicated PostgreSQL it can lose) or a given loopback target, then
// the failure scenario, the degradation ramps and the optional soak, and assembles the
// report: the seed's ScalabilityLimits and PerformanceBenchmarks filled from measured
// values, the architecture decision by stated rules, and the cost projection.
import { cpus, loadavg, totalmem } from 'node:os';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runLoad, type LiveStatus } from '../load/coordinator.js';
import { MAX_SOCKETS_PER_WORKER, WorkerPool } from '../load/pool.js';
import { startEmbeddedGateway, type EmbeddedGateway } from '../load/embedded-gateway.js';
import { createFanoutStreams, type Target } from '../load/target.js';
import { DEFAULT_GENERATOR_LIMITS, type FaultStep, type GeneratorLimits, type RunSpec } from '../load/spec.js';
import { SEED_THRESHOLDS, type Threshold } from '../load/thresholds.js';
import { sseUserLatency, type RunResult } from '../load/result.js';
import { searchDegradation, type StepOutcome } from './degradation.js';
import { PROFILES, RAMP_CRITERIA, matrix, rampRealtimeLoad, rampSseLoad, soak, type Profile, type ScenarioDef } from './matrix.js';
import { computeBenchmarks, computeLimits } from './limits.js';
import { decide, gatherFacts, withinInterferenceBudget } from './decision.js';
import { DEFAULT_COST_ASSUMPTIONS, projectCost, type CostInputs } from './cost.js';
import { dedicatedPostgresUnavailable, startDedicatedPostgres, type DedicatedPostgres } from './postgres.js';
import type { DegradationRecord, FaultComparison, ScenarioRecord, SpikeReport } from './model.js';

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

function compareFault(fault: ScenarioRecord, solo: ScenarioRecord | undefined, method: string, restoreAtMs: number): FaultComparison {
  const f = fault.result;
  const s = solo?.result;
  const rows: FaultComparison['rows'] = [];
  const sseF = f.groups.sse;
  const sseS = s?.groups.sse;
  const p99ok = withinInterferenceBudget(sseUserLatency(sseS)?.p99 ?? null, sseUserLatency(sseF)?.p99 ?? null);
  rows.push({ metric: 'SSE delivery p99 (ms)', solo: sseUserLatency(sseS)?.p99 ?? null, duringFault: sseUserLatency(sseF)?.p99 ?? null, verdict: p99ok === false ? 'degraded' : 'unaffected' });
  rows.push({ metric: 'SSE delivery p50 (ms)', solo: sseUserLatency(sseS)?.p50 ?? null, duringFault: sseUserLatency(sseF)?.p50 ?? null, verdict: withinInterferenceBudget(sseUserLatency(sseS)?.p50 ?? null, sseUserLatency(sseF)?.p50 ?? null) === false ? 'degraded' : 'unaffected' });
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
    unaffected: rows.every((r) => r.verdict === 'unaffected'),
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

function verdictOf(r: RunResult, criteria: readonly string[]): StepOutcome['verdict'] {
  if (!r.valid) return 'invalid';
  return r.thresholds.some((t) => criteria.includes(t.metric) && (t.status === 'fail' || t.status === 'no-data')) ? 'fail' : 'pass';
}

export async function runSpike(opts: SpikeOptions): Promise<SpikeReport> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  const profile = PROFILES[opts.profile];
  const env = await prepareEnvironment(opts, log);
  const scenarios: ScenarioRecord[] = [];
  const defs = matrix(opts.profile).filter((d) => !opts.only || opts.only.test(d.id));
  const biggest = Math.max(2, Math.ceil(Math.max(profile.rampSse.max, profile.rampRealtime.max) / MAX_SOCKETS_PER_WORKER));
  let pool: WorkerPool;
  try {
    pool = await WorkerPool.start(biggest);
  } catch (err) {
    await env.embedded?.stop();
    await env.db?.destroy();
    throw err;
  }
  const prepareSse = env.target.kind === 'fanout' ? async (n: number) => ({ streams: await createFanoutStreams(env.target, n, `spk${Date.now().toString(36)}`) }) : undefined;
  const errors: SpikeReport['errors'] = [];
  /** One run; a run that cannot complete (a worker stuck past its deadline) is recorded and the pool replaced, so the spike carries on. */
  const run = async (def: Pick<ScenarioDef, 'id' | 'durationMs' | 'rampMs' | 'sse' | 'realtime'>, faults?: FaultStep[], thresholds?: Threshold[]): Promise<RunResult | undefined> => {
    try {
      const r = await runLoad(specFor(def, env, opts, faults, thresholds), { pool, prepareSse, baselineMs: profile.baselineMs, onStatus: opts.onStatus });
      log(`${def.id}: ${!r.valid ? 'INVALID' : r.passed ? 'passed' : 'failed'}`);
      return r;
    } catch (err) {
      const message = (err as Error).message;
      log(`${def.id}: could not be measured: ${message}`);
      errors.push({ scenario: def.id, message });
      await pool.close();
      pool = await WorkerPool.start(biggest);
      return undefined;
    }
  };
  const record = (def: ScenarioDef, result: RunResult): ScenarioRecord => ({
    id: def.id,
    title: def.title,
    category: def.category,
    seedItem: def.seedItem,
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
        fault = compareFault(rec, scenarios.find((s) => s.id === def.soloId), dbf.method, restoreAt);
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
      const search = await searchDegradation(
        async (load) => {
          const id = `ramp-${transport}-${load}`;
          const def = {
            id,
            durationMs: ramp.stepMs,
            rampMs: Math.round(ramp.stepMs / 3),
            ...(transport === 'sse' ? { sse: rampSseLoad(load) } : { realtime: rampRealtimeLoad(profile, load) }),
          };
          const stepThresholds = (opts.thresholds ?? [...SEED_THRESHOLDS]).filter((t) => criteria.includes(t.metric));
          let result = await run(def, undefined, stepThresholds);
          // An invalid step says nothing about the server; on a shared machine the cause is often
          // passing contention, so it is measured once more before the search gives up.
          if ((!result || !result.valid) && profile.retryInvalidSteps) {
            log(`${id}: retrying once after ${result ? 'an invalid run' : 'a run that could not complete'}`);
            result = await run(def, undefined, stepThresholds);
            result?.notes.push('this ramp step was run twice: the first attempt was INVALID or could not complete');
          }
          if (!result) {
            const failures = [`the run could not be measured: ${errors[errors.length - 1]?.message}`];
            steps.push({ load, scenarioId: id, verdict: 'invalid', failures, p99Ms: null, connectP99Ms: null });
            return { load, verdict: 'invalid' as const, failures };
          }
          scenarios.push({ id, title: `${transport === 'sse' ? 'SSE' : 'Realtime'} ramp step: ${load} ${transport === 'sse' ? 'connections' : 'users'}`, category: transport === 'sse' ? 'ramp-sse' : 'ramp-realtime', load, result });
          const verdict = verdictOf(result, criteria);
          const failures = verdict === 'invalid' ? result.generator.reasons : result.thresholds.filter((t) => criteria.includes(t.metric) && t.status !== 'pass').map((t) => `${t.metric} ${t.actual ?? 'no data'} (needs ${t.op} ${t.value})`);
          const g = transport === 'sse' ? result.groups.sse : result.groups.realtime;
          const p99 = transport === 'sse' ? (sseUserLatency(g)?.p99 ?? null) : Math.max(g?.latency.presence?.p99 ?? 0, g?.latency.broadcast?.p99 ?? 0) || null;
          // For Realtime the user-visible wait is the subscription (connect + join).
          const waitP99 = transport === 'sse' ? (g?.connect.p99 ?? null) : (result.groups.realtime?.subscribe?.p99 ?? null);
          steps.push({ load, scenarioId: id, verdict, failures, p99Ms: p99, connectP99Ms: waitP99 });
          return { load, verdict, failures };
        },
        { start: ramp.start, factor: ramp.factor, max: ramp.max, refine: ramp.refine, maxSteps: ramp.maxSteps, resolution: Math.max(10, Math.round(ramp.start / 4)) },
      );
      degradation[transport] = { transport, unit: transport === 'sse' ? 'connections' : 'users', criteria, steps, lastPass: search.lastPass, firstFail: search.firstFail, stoppedBy: search.stoppedBy, max: ramp.max };
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
  return assembleReport({ opts, env, scenarios, fault, degradation, started, errors });
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

function assembleReport(a: { opts: SpikeOptions; env: Environment; scenarios: ScenarioRecord[]; fault: SpikeReport['fault']; degradation: SpikeReport['degradation']; started: number; errors: SpikeReport['errors'] }): SpikeReport {
  const { opts, env, scenarios, fault, degradation } = a;
  const costUsers = opts.cost?.users ?? DEFAULT_COST_ASSUMPTIONS.users;
  const facts = gatherFacts(scenarios, degradation, fault, costUsers);
  const decision = decide(facts);
  const scalingStrategy = decision.scaling.map((s) => s.statement).join(' ');
  const limits = computeLimits(scenarios, degradation, scalingStrategy);
  const benchmarks = computeBenchmarks(scenarios, limits);
  const rates = measuredRates(scenarios);
  const recSse = limits.sse.recommendedLimit.value;
  const recRt = limits.supabaseRealtime.recommendedLimit.value;
  const usersPerInstance = recSse && recRt ? Math.floor(1 / (1 / recSse + 1 / recRt)) : null;
  const defined = Object.fromEntries(Object.entries(opts.cost ?? {}).filter(([, v]) => v !== undefined)) as Partial<CostInputs>;
  const cost = projectCost({
    ...DEFAULT_COST_ASSUMPTIONS,
    realtimeReceivedPerUserPerSec: rates.received,
    realtimeSentPerUserPerSec: rates.sent,
    progressPerUserPerSec: rates.progress,
    ...defined,
    users: costUsers,
    usersPerInstance,
  });
  const invalid = scenarios.filter((s) => !s.result.valid).map((s) => s.id);
  const notes = [...env.notes];
  if (invalid.length) notes.push(`${invalid.length} run(s) were INVALID because the generator saturated (${invalid.join(', ')}); they are excluded from limits and benchmarks.`);
  notes.push('The embedded gateway runs with per-user and per-tenant rate limits raised (connections per user, joins/s, events/s) so that a run finds the gateway’s capacity rather than a quota; Supabase’s plan quotas appear in the cost projection.');
  return {
    version: 1,
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
    invalidScenarios: invalid,
    errors: a.errors,
    notes,
  };
}
