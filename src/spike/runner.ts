// `fanout spike`: runs the seed's whole matrix against an embedded gateway (started as a
// child process, with a dedicated PostgreSQL it can lose) or a given loopback target, then
// the failure scenario, the degradation ramps and the optional soak, and assembles the
// report: the seed's ScalabilityLimits and PerformanceBenchmarks filled from measured
// values, the architecture decision by stated rules, and the cost projection.
// Its phases: prepareEnvironment (environment.ts), runMatrix with the failure scenario
// (compared in fault-comparison.ts), runRamp per transport (ramp.ts), the soak, and
// assembleReport (report-assembly.ts); every run goes through SpikeRuns (runs.ts).
import type { LiveStatus } from '../load/live-status.js';
import { MAX_SOCKETS_PER_WORKER } from '../load/pool.js';
import type { Target } from '../load/target.js';
import type { FaultStep, GeneratorLimits } from '../load/spec.js';
import type { Threshold } from '../load/thresholds.js';
import { PROFILES, matrixWithRepeats, soak, type Profile, type ScenarioDef } from './matrix.js';
import type { CostInputs } from './cost.js';
import type { ScenarioRecord, SpikeReport } from './model.js';
import { prepareEnvironment, type Environment } from './environment.js';
import { compareFault } from './fault-comparison.js';
import { runRamp } from './ramp.js';
import { assembleReport } from './report-assembly.js';
import { SpikeRuns, scenarioRecord } from './runs.js';

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

export async function runSpike(opts: SpikeOptions): Promise<SpikeReport> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  const profile = PROFILES[opts.profile];
  const env = await prepareEnvironment(opts, log);
  const scenarios: ScenarioRecord[] = [];
  const defs = matrixWithRepeats(opts.profile, opts.repeats).filter((d) => !opts.only || opts.only.test(d.repeatOf ?? d.id));
  const biggest = Math.max(2, Math.ceil(Math.max(profile.rampSse.max, profile.rampRealtime.max) / MAX_SOCKETS_PER_WORKER));
  let runs: SpikeRuns;
  try {
    runs = await SpikeRuns.open(env.target, opts, biggest, log);
  } catch (err) {
    await env.embedded?.stop();
    await env.db?.destroy();
    throw err;
  }
  let fault: SpikeReport['fault'];
  const degradation: SpikeReport['degradation'] = {};
  try {
    fault = await runMatrix(defs, env, runs, scenarios);
    for (const transport of ['sse', 'realtime'] as const) {
      if (opts.only && !opts.only.test(`ramp-${transport}`)) continue;
      degradation[transport] = await runRamp(transport, { profile, settings: opts, embedded: env.embedded, runs, scenarios, log });
    }
    if (opts.soakS && (!opts.only || opts.only.test('soak'))) {
      const def = soak(opts.profile, opts.soakS);
      const result = await runs.run(def);
      if (result) scenarios.push(scenarioRecord(def, result));
    }
  } finally {
    await runs.close();
    await env.embedded?.stop();
    await env.db?.destroy();
  }
  const generator = { agents: opts.agents ?? [], localWorkers: opts.agents?.length ? (opts.localWorkers ?? 0) : (opts.localWorkers ?? biggest) };
  return assembleReport({ opts, env, scenarios, fault, degradation, started, errors: runs.errors, generator });
}

/** The matrix's scenarios in order, the failure scenario among them; returns what the failure scenario found. */
async function runMatrix(defs: readonly ScenarioDef[], env: Environment, runs: SpikeRuns, scenarios: ScenarioRecord[]): Promise<SpikeReport['fault']> {
  let fault: SpikeReport['fault'] = { skipped: 'not run' };
  for (const def of defs) {
    if (def.category === 'fault') {
      fault = await runFaultScenario(def, env, runs, scenarios);
      continue;
    }
    const result = await runs.run(def);
    if (result) scenarios.push(scenarioRecord(def, result));
  }
  return fault;
}

/** The failure scenario: the database stopped a third of the way in and started again at two thirds, compared with its solo run. */
async function runFaultScenario(def: ScenarioDef, env: Environment, runs: SpikeRuns, scenarios: ScenarioRecord[]): Promise<SpikeReport['fault']> {
  if (!env.dbFault) {
    return { skipped: env.embedded ? 'no dedicated PostgreSQL could be started, so the database cannot be failed' : 'the target’s database cannot be failed from here (give --fault-stop-cmd and --fault-start-cmd for a loopback target)' };
  }
  const dbf = env.dbFault;
  const stopAt = Math.round(def.durationMs / 3);
  const restoreAt = Math.round((2 * def.durationMs) / 3);
  const faults: FaultStep[] = [
    { atMs: stopAt, label: `database stopped: ${dbf.method.split(',')[0]}`, run: () => dbf.stop() },
    { atMs: restoreAt, label: 'database started again', run: () => dbf.start() },
  ];
  const result = await runs.run(def, faults);
  if (!result) {
    // The database may still be stopped.
    const skipped = { skipped: `the failure run could not be measured: ${runs.lastError}` };
    await dbf.start().catch(() => undefined);
    return skipped;
  }
  const rec = scenarioRecord(def, result);
  scenarios.push(rec);
  return compareFault(rec, scenarios, def.soloId ?? 'sse-100', dbf.method, restoreAt);
}
