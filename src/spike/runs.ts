// The load runs of one spike, on one generator pool they all share (local worker
// processes, or agents on other machines): each scenario, ramp step and soak is one `run`.
// A run that cannot complete (a worker stuck past its deadline) is recorded and the pool
// replaced, and a generator host lost in a run is reconnected before the next one, so the
// spike carries on.
import { runLoad, type RunHooks } from '../load/coordinator.js';
import type { LiveStatus } from '../load/live-status.js';
import { WorkerPool } from '../load/pool.js';
import { openGeneratorPool } from '../load/agent-client.js';
import { createFanoutStreams, type Target } from '../load/target.js';
import { DEFAULT_GENERATOR_LIMITS, type FaultStep, type GeneratorLimits, type RunSpec } from '../load/spec.js';
import { SEED_THRESHOLDS, type Threshold } from '../load/thresholds.js';
import type { RunResult } from '../load/result.js';
import type { GeneratorCost } from '../load/generator-cost.js';
import { PROFILES, type Profile, type ScenarioDef } from './matrix.js';
import type { ScenarioRecord, SpikeReport } from './model.js';

/** What one run loads: a scenario of the matrix, a ramp step or the soak. */
export type RunDef = Pick<ScenarioDef, 'id' | 'durationMs' | 'rampMs' | 'sse' | 'realtime'>;

/** The spike's options every run uses. */
export interface RunSettings {
  profile: Profile;
  thresholds?: Threshold[];
  generator?: GeneratorLimits;
  /** Generators on other machines, with their shared token; local workers then default to none. */
  agents?: string[];
  agentToken?: string;
  /** Local generator processes beside the agents. */
  localWorkers?: number;
  onStatus?(s: LiveStatus): void;
}

export class SpikeRuns {
  /** Runs that could not complete, with why. */
  readonly errors: SpikeReport['errors'] = [];
  private readonly prepareSse: RunHooks['prepareSse'];

  private constructor(
    private pool: WorkerPool,
    private readonly openPool: () => Promise<WorkerPool>,
    private readonly target: Target,
    private readonly settings: RunSettings,
    private readonly log: (line: string) => void,
  ) {
    this.prepareSse = target.kind === 'fanout' ? async (n: number) => ({ streams: await createFanoutStreams(target, n, `spk${Date.now().toString(36)}`) }) : undefined;
  }

  /** Opens the generator pool: the agents (and `localWorkers` beside them), or `defaultLocalWorkers` local processes. */
  static async open(target: Target, settings: RunSettings, defaultLocalWorkers: number, log: (line: string) => void): Promise<SpikeRuns> {
    const openPool = (): Promise<WorkerPool> =>
      settings.agents?.length ? openGeneratorPool({ localWorkers: settings.localWorkers ?? 0, agents: settings.agents, token: settings.agentToken }) : WorkerPool.start(settings.localWorkers ?? defaultLocalWorkers);
    return new SpikeRuns(await openPool(), openPool, target, settings, log);
  }

  /** Generator processes in the pool now. */
  get poolSize(): number {
    return this.pool.size;
  }

  /** Why the latest run that could not complete failed. */
  get lastError(): string | undefined {
    return this.errors[this.errors.length - 1]?.message;
  }

  /** One run; undefined when it could not complete (recorded in `errors`, and the pool replaced). */
  async run(def: RunDef, faults?: FaultStep[], thresholds?: Threshold[], generatorCost?: Partial<Record<'sse' | 'realtime', GeneratorCost>>): Promise<RunResult | undefined> {
    let r: RunResult;
    try {
      r = await runLoad(specFor(def, this.target, this.settings, faults, thresholds), { pool: this.pool, prepareSse: this.prepareSse, baselineMs: PROFILES[this.settings.profile].baselineMs, onStatus: this.settings.onStatus, generatorCost });
      this.log(`${def.id}: ${!r.valid ? `INVALID (${r.generator.reasons[0] ?? 'see the report'})` : r.passed ? 'passed' : 'failed'}`);
    } catch (err) {
      const message = (err as Error).message;
      this.log(`${def.id}: could not be measured: ${message}`);
      this.errors.push({ scenario: def.id, message });
      await this.pool.close();
      this.pool = await this.openPool();
      return undefined;
    }
    // An agent lost in this run is reconnected before the next one (or the spike stops, saying which).
    const lost = this.pool.hostInfo().filter((h) => h.lost);
    if (lost.length) {
      this.log(`reconnecting the generator after losing ${lost.map((h) => h.name).join(', ')}`);
      await this.pool.close();
      this.pool = await this.openPool();
    }
    return r;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

function specFor(def: RunDef, target: Target, settings: RunSettings, faults?: FaultStep[], thresholds?: Threshold[]): RunSpec {
  return {
    name: def.id,
    target,
    durationMs: def.durationMs,
    rampMs: def.rampMs,
    pattern: 'gradual',
    sse: def.sse,
    realtime: def.realtime,
    thresholds: thresholds ?? settings.thresholds ?? [...SEED_THRESHOLDS],
    generator: settings.generator ?? DEFAULT_GENERATOR_LIMITS,
    faults,
    drainMs: PROFILES[settings.profile].drainMs,
  };
}

/** A scenario of the matrix as the report records it. */
export function scenarioRecord(def: ScenarioDef, result: RunResult): ScenarioRecord {
  return {
    id: def.id,
    title: def.title,
    category: def.category,
    seedItem: def.seedItem,
    ...(def.repeatOf ? { repeatOf: def.repeatOf } : {}),
    load: (def.sse?.connections ?? 0) + (def.realtime ? def.realtime.projects * def.realtime.usersPerProject : 0),
    result,
  };
}
