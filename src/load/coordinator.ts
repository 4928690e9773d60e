// Runs one load run, one named phase after another: plan the connections over the worker
// processes (planRun), hand the plans out (startWorkers), sample the idle server
// (sampleIdleBaseline), start the clock (startRun; the workers ramp their connections from
// their plans), inject faults at their times (scheduleFaults), merge the workers' ticks and
// watch the run once a second (watchRun), take the roll call after the ramp and then publish
// on open-loop schedules (publishAfterRollCall), hold until the end or an abort
// (holdUntilEnd), stop publishing and let in-flight messages land (drainPublishing), take
// each worker's final accounting (collectFinals) and judge what was collected (judgeRun).
import type { OpenLoopScheduler } from './schedule.js';
import { RunAggregator } from './aggregate.js';
import { schedulePublishers, type HttpPublisher, type RunPublishers } from './publishers.js';
import { ServerSampler } from './sampler.js';
import { buildResult, type RunResult } from './result.js';
import { COORDINATOR } from './generator-health.js';
import { liveMetrics } from './metric-map.js';
import { Recorder } from './recorder.js';
import { ClockOffsetEstimator } from './clock.js';
import { preflight } from './preflight.js';
import { evaluateThresholds } from './thresholds.js';
import { WorkerPool } from './pool.js';
import { spreadsSourceAddresses } from './target.js';
import type { PublishedStreams, WorkerFinal, WorkerPlan, WorkerTick } from './plan.js';
import { paced, type FaultStep, type RunSpec } from './spec.js';
import { forecast, type GeneratorCost } from './generator-cost.js';
import { defaultStreams, planWorkers, socketsOf, workersFor, type SseStreams } from './worker-plans.js';
import { liveStatus, type LiveStatus } from './live-status.js';
import { ROLL_CALL_AFTER_RAMP_MS, rollCallAt } from './roll-call.js';

export type { SseStreams } from './worker-plans.js';

export interface RunHooks {
  onStatus?(status: LiveStatus): void;
  /** Creates the SSE streams before the run (Fanout: content items); defaults to generated ids. */
  prepareSse?(count: number): Promise<SseStreams>;
  /** Reuse a pool across runs (the spike does); otherwise one is started and stopped for this run. */
  pool?: WorkerPool;
  /** ms of idle server sampling before the start, the CPU baseline. */
  baselineMs?: number;
  tickMs?: number;
  /** What the generator cost in an earlier run (the spike's previous step), for the preflight forecast; defaults otherwise. */
  generatorCost?: Partial<Record<'sse' | 'realtime', GeneratorCost>>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A worker silent for this long (or whose reports arrive this late) has stopped keeping up with the run. */
function silenceLimitMs(tickMs: number): number {
  return Math.max(3000, 3 * tickMs);
}

let runCounter = 0;

export async function runLoad(requested: RunSpec, hooks: RunHooks = {}): Promise<RunResult> {
  const plan = await planRun(requested, hooks);
  const pool = hooks.pool ?? (await WorkerPool.start(plan.workers));
  const instruments = instrumentsFor(plan.spec);
  const health = new RunHealth();
  const timers = new RunTimers();
  let run: StartedRun | undefined;
  let rollCall: Promise<string | undefined> | undefined;
  try {
    // Ticks that arrive before the start are dropped: nothing is merged before t0.
    await startWorkers(pool, plan.plans, health, (tick) => run?.agg.onTick(tick, Date.now()));
    await sampleIdleBaseline(instruments.sampler, hooks.baselineMs ?? 2000);
    run = startRun(pool, plan.spec, instruments.self, health);
    const publishing = schedulePublishers(plan.spec, plan.sse, plan.runId, run, run.agg.total, instruments.clock);
    timers.schedulers.push(...publishing.schedulers);
    const faults = scheduleFaults(plan.spec.faults ?? [], run.t0, timers);
    timers.statusTimer = watchRun(plan, run, pool, instruments, health, hooks.onStatus);
    rollCall = publishAfterRollCall(pool, plan, run, publishing, timers, health);
    const stoppedAt = await holdUntilEnd(run.endAt, health);
    const published = await drainPublishing(pool, publishing.publishers, rollCall, timers, plan.spec.drainMs ?? 1500);
    const finals = await collectFinals(pool, published, plan.tickMs, run.agg, instruments, timers);
    return judgeRun({ plan, run, stoppedAt, finals, publishers: publishing.publishers, faults, pool, instruments, health, generatorCost: hooks.generatorCost, rollCallNote: await rollCall });
  } finally {
    timers.stopAll();
    // Settles at once once publishing is stopped; a shared pool must not be left with its collect pending.
    await rollCall;
    instruments.sampler.stop();
    if (!hooks.pool) await pool.close();
  }
}

/** What a run settled before any process started: the paced spec, the worker count and what each worker opens. */
interface RunPlan {
  spec: RunSpec;
  runId: string;
  tickMs: number;
  workers: number;
  sse: SseStreams | undefined;
  plans: WorkerPlan[];
  /** The preflight's and the pacing's notes, for the result. */
  notes: string[];
}

/** What measures the run beside the workers. */
interface Instruments {
  sampler: ServerSampler;
  /** Where the sampler reads the server (for the result). */
  sources: string[];
  /** The coordinator is part of the generator too (it publishes and merges): its lag and CPU count. */
  self: Recorder;
  /** The server's clock against the generator's, from the publishers' replies. */
  clock: ClockOffsetEstimator;
}

/** The run once started: its clock and the merge of the workers' ticks. */
interface StartedRun {
  t0: number;
  endAt: number;
  agg: RunAggregator;
}

/**
 * What ends a run early or makes it INVALID, shared by the phases that watch for it: worker
 * processes that failed, generator hosts that went away or silent, and the abort itself.
 */
class RunHealth {
  readonly workerErrors: string[] = [];
  /** Generator hosts that went away or stopped reporting: each makes the run INVALID, named. */
  readonly hostProblems: string[] = [];
  aborted: RunResult['aborted'] = null;
  /** Resolves to end the wait for the run's end early (abort-on-fail, a worker process died, an agent was lost). */
  readonly aborting: Promise<void>;
  private release: () => void = () => undefined;
  private t0 = 0;

  constructor() {
    this.aborting = new Promise<void>((resolve) => (this.release = resolve));
  }

  started(t0: number): void {
    this.t0 = t0;
  }

  /** Seconds since the start, to a tenth (0 before it). */
  at(): number {
    return this.t0 ? Math.round((Date.now() - this.t0) / 100) / 10 : 0;
  }

  /** Ends the wait without naming a reason (the error that caused it is reported on its own). */
  abort(): void {
    this.release();
  }

  /** Ends the wait and records `reason` as why the run stopped early, unless one is recorded already. */
  abortFor(reason: string): void {
    if (!this.aborted) this.aborted = { atS: this.at(), reason };
    this.release();
  }
}

/** Everything that must stop however the run ends: publishing schedules, pending faults, the once-a-second watch. */
class RunTimers {
  readonly schedulers: OpenLoopScheduler[] = [];
  readonly faultTimers: NodeJS.Timeout[] = [];
  statusTimer: NodeJS.Timeout | undefined;
  /** Aborted once publishing stops: a roll call still waiting for its time is not taken. */
  readonly publishing = new AbortController();

  stopPublishing(): void {
    this.publishing.abort();
    for (const s of this.schedulers) s.stop();
  }

  stopWatching(): void {
    if (this.statusTimer) clearInterval(this.statusTimer);
  }

  stopAll(): void {
    this.stopPublishing();
    for (const t of this.faultTimers) clearTimeout(t);
    this.stopWatching();
  }
}

/** Preflight and plan: paces the spec, sizes the workers, prepares the SSE streams and deals the connections out. */
async function planRun(requested: RunSpec, hooks: RunHooks): Promise<RunPlan> {
  const pacing = paced(requested);
  const spec = pacing.spec;
  const runId = `lt${Date.now().toString(36)}${(runCounter++).toString(36)}`;
  const tickMs = hooks.tickMs ?? 1000;
  const check = preflight(socketsOf(spec), hooks.pool?.size ?? workersFor(spec), spreadsSourceAddresses(spec.target.url) ? 'spread' : null);
  if (hooks.pool && check.workers > hooks.pool.size) throw new Error(`this run needs ${check.workers} generator processes but the shared pool has ${hooks.pool.size}: ${check.notes.join('; ')}`);
  const workers = hooks.pool?.size ?? check.workers;
  const sse = spec.sse ? await (hooks.prepareSse ? hooks.prepareSse(spec.sse.streams) : Promise.resolve(defaultStreams(spec.sse.streams, runId))) : undefined;
  const plans = planWorkers(spec, workers, sse, runId, tickMs);
  const gone = hooks.pool?.hostInfo().filter((h) => h.lost) ?? [];
  if (gone.length) throw new Error(`the generator lost ${gone.map((h) => `${h.name} (${h.lost})`).join(', ')} before this run: reconnect it first`);
  return { spec, runId, tickMs, workers, sse, plans, notes: [...check.notes, ...(pacing.note ? [pacing.note] : [])] };
}

function instrumentsFor(spec: RunSpec): Instruments {
  return {
    sampler: new ServerSampler({ pid: spec.target.pid, metricsUrl: spec.target.metricsUrl }),
    sources: [spec.target.pid !== undefined ? `/proc/${spec.target.pid}` : '', spec.target.metricsUrl ?? ''].filter(Boolean),
    self: new Recorder(COORDINATOR),
    clock: new ClockOffsetEstimator(),
  };
}

/** Listens to the workers (ticks, failures, lost hosts), syncs their clocks and hands each its plan. */
async function startWorkers(pool: WorkerPool, plans: readonly WorkerPlan[], health: RunHealth, onTick: (tick: WorkerTick) => void): Promise<void> {
  pool.onMessage((msg) => {
    if (msg.type === 'tick') onTick(msg);
    else if (msg.type === 'fatal') {
      health.workerErrors.push(`worker ${msg.worker} on ${pool.hostName(msg.worker)}: ${msg.message}`);
      health.abort();
    }
  });
  pool.onLost((h) => {
    const problem = `${h.name} (worker${h.workers.length > 1 ? 's' : ''} ${h.workers.join(', ')}) went away at ${health.at()} s: ${h.lost}`;
    health.hostProblems.push(problem);
    health.abortFor(problem);
  });
  // Each worker stamps on the coordinator's clock: its host's offset is measured now, before the plans go out.
  await pool.syncClocks();
  const planned = pool.collect('planned', 60_000);
  plans.forEach((p, i) => pool.send(i, { type: 'plan', plan: { ...p, clockOffsetMs: pool.clockOffsetOf(i) } }));
  await planned;
}

/** Idle baseline: two explicit samples bracket a quiet period, so the CPU the run adds can be told apart. */
async function sampleIdleBaseline(sampler: ServerSampler, baselineMs: number): Promise<void> {
  if (sampler.hasSource) await sampler.sampleOnce();
  await sleep(Math.max(baselineMs, 200));
  if (sampler.hasSource) {
    await sampler.sampleOnce();
    sampler.start();
  }
}

/** Sets t0 and tells every worker to start: each opens its connections at its planned offsets (the ramp). */
function startRun(pool: WorkerPool, spec: RunSpec, self: Recorder, health: RunHealth): StartedRun {
  const t0 = Date.now() + 100;
  const endAt = t0 + spec.durationMs;
  health.started(t0);
  const agg = new RunAggregator(t0, t0 + spec.rampMs + 1000);
  self.startLagProbe();
  self.tick(Date.now());
  pool.broadcast({ type: 'start', t0, endAt });
  return { t0, endAt, agg };
}

/**
 * After the ramp, takes the roll call (roll-call.ts), then starts the coordinator-side
 * publishers on their open-loop schedules (first due after it; a late answer shows as publish
 * lateness). A worker that does not answer makes the run INVALID and ends it, since publishing
 * could then charge its subscribers for what they missed. Returns the run's note; never rejects.
 */
async function publishAfterRollCall(pool: WorkerPool, plan: RunPlan, run: StartedRun, publishing: RunPublishers, timers: RunTimers, health: RunHealth): Promise<string | undefined> {
  const at = run.t0 + plan.spec.rampMs + ROLL_CALL_AFTER_RAMP_MS;
  try {
    const timing = { at, endAt: run.endAt, stopped: timers.publishing.signal, aborting: health.aborting, timeoutMs: Math.max(5000, silenceLimitMs(plan.tickMs)) };
    const present = await rollCallAt(pool, publishing.fromFirst, timing);
    if (present === undefined) return undefined;
    for (const s of publishing.schedulers) s.start();
    return `roll call at ramp + ${ROLL_CALL_AFTER_RAMP_MS} ms: ${present} of ${socketsOf(plan.spec)} subscribers live, each owed its streams from the first message on (docs/load-testing.md)`;
  } catch (err) {
    const problem = `the generator could not take the roll call before publishing (at ${health.at()} s): ${(err as Error).message}`;
    health.hostProblems.push(problem);
    health.abortFor(problem);
    return undefined;
  }
}

/** Arms each fault at its time; the returned list fills in as they run (when, which, and whether it worked). */
function scheduleFaults(steps: readonly FaultStep[], t0: number, timers: RunTimers): RunResult['faults'] {
  const faults: RunResult['faults'] = [];
  for (const f of steps) {
    timers.faultTimers.push(
      setTimeout(() => {
        f.run().then(
          () => faults.push({ atS: Math.round((Date.now() - t0) / 100) / 10, label: f.label, ok: true }),
          (err: unknown) => faults.push({ atS: Math.round((Date.now() - t0) / 100) / 10, label: f.label, ok: false, error: (err as Error).message }),
        );
      }, Math.max(0, t0 + f.atMs - Date.now())),
    );
  }
  return faults;
}

/**
 * Once a second: the coordinator's own health joins the merge, live status goes out,
 * every worker is checked for having reported lately (a stalled agent or a cut network
 * shows as silence), and (with abortOnFail) latency thresholds are judged on the merged
 * data so far.
 */
function watchRun(plan: RunPlan, run: StartedRun, pool: WorkerPool, instruments: Instruments, health: RunHealth, onStatus: RunHooks['onStatus']): NodeJS.Timeout {
  const { spec, workers, tickMs } = plan;
  const { t0, agg } = run;
  const silentWorkers = new Set<number>();
  const liveFrom = t0 + spec.rampMs + 1000;
  const liveThresholds = spec.thresholds.filter((t) => /\.(p50|p90|p99|p999|max|mean)$/.test(t.metric));
  return setInterval(() => {
    agg.onTick(instruments.self.tick(Date.now()));
    const now = Date.now();
    for (let w = 0; w < workers; w++) {
      const last = agg.lastTickAt.get(w) ?? t0;
      if (!silentWorkers.has(w) && !pool.isLost(w) && now - last > silenceLimitMs(tickMs)) {
        silentWorkers.add(w);
        health.hostProblems.push(`worker ${w} on ${pool.hostName(w)} sent no report for ${Math.round((now - last) / 100) / 10} s (at ${health.at()} s): its figures are missing or late`);
      }
    }
    if (onStatus) onStatus(liveStatus(spec, agg, workers, instruments.sampler, t0));
    if (spec.abortOnFail && !health.aborted && Date.now() >= liveFrom) {
      const failed = evaluateThresholds(liveThresholds, liveMetrics(agg.total)).find((r) => r.status === 'fail');
      if (failed) health.abortFor(`${failed.metric} ${failed.actual} failed ${failed.op} ${failed.value}`);
    }
  }, 1000);
}

/** Waits for the planned end or an abort; returns when the run stopped. A failed worker process fails the run here. */
async function holdUntilEnd(endAt: number, health: RunHealth): Promise<number> {
  let endTimer: NodeJS.Timeout | undefined;
  await Promise.race([new Promise<void>((r) => (endTimer = setTimeout(r, Math.max(0, endAt - Date.now())))), health.aborting]);
  clearTimeout(endTimer);
  const stoppedAt = Math.min(endAt, Date.now());
  if (health.workerErrors.length) throw new Error(`load workers failed: ${health.workerErrors.join('; ')}`);
  return stoppedAt;
}

/** Stops publishing (here and in the workers), lets in-flight messages land, and returns what every stream published. */
async function drainPublishing(pool: WorkerPool, publishers: Record<string, HttpPublisher>, rollCall: Promise<unknown>, timers: RunTimers, drainMs: number): Promise<PublishedStreams> {
  timers.stopPublishing();
  // A roll call under way finishes first: the pool waits for one kind of answer at a time.
  await rollCall;
  const publishedP = pool.collect('published', 60_000);
  pool.broadcast({ type: 'stop-publishing' });
  const ownPublished = await publishedP;
  await Promise.all(Object.values(publishers).map((p) => p.drain()));
  await sleep(drainMs);
  const published: PublishedStreams = {};
  for (const p of Object.values(publishers)) Object.assign(published, p.published);
  for (const m of ownPublished) Object.assign(published, m.published);
  return published;
}

/** Tells the workers what was published and takes their final accounting, then stops measuring. */
async function collectFinals(pool: WorkerPool, published: PublishedStreams, tickMs: number, agg: RunAggregator, instruments: Instruments, timers: RunTimers): Promise<WorkerFinal[]> {
  const finalsP = pool.collect('final', 60_000);
  pool.broadcast({ type: 'finish', published });
  const finals = await finalsP;
  await sleep(Math.min(300, tickMs));
  instruments.sampler.stop();
  timers.stopWatching();
  instruments.self.stopLagProbe();
  agg.onTick(instruments.self.tick(Date.now()));
  return finals;
}

/** What judgeRun weighs: the plan, what was measured, and what went wrong on the way. */
interface RunOutcome {
  plan: RunPlan;
  run: StartedRun;
  stoppedAt: number;
  finals: WorkerFinal[];
  publishers: Record<string, HttpPublisher>;
  faults: RunResult['faults'];
  pool: WorkerPool;
  instruments: Instruments;
  health: RunHealth;
  generatorCost: RunHooks['generatorCost'];
  rollCallNote: string | undefined;
}

/** Notes what limits the figures (late hosts, clocks, the generator forecast) and builds the judged result. */
function judgeRun(o: RunOutcome): RunResult {
  const { spec, workers, tickMs } = o.plan;
  const { t0, endAt, agg } = o.run;
  const { health, pool } = o;
  const ranUntil = health.aborted ? o.stoppedAt : endAt;
  const notes = [...o.plan.notes, ...forecast(spec, workers, o.generatorCost).notes, ...(o.rollCallNote ? [o.rollCallNote] : [])];
  for (const [w, delay] of agg.maxTickDelayMs) {
    if (w !== COORDINATOR && delay > silenceLimitMs(tickMs)) health.hostProblems.push(`reports from worker ${w} on ${pool.hostName(w)} arrived up to ${Math.round(delay)} ms late: that host lagged behind the run`);
  }
  const hosts = pool.hostInfo();
  if (hosts.some((h) => h.name !== 'local')) notes.push(`generator hosts: ${hosts.map((h) => `${h.name} (${h.workers.length} worker${h.workers.length > 1 ? 's' : ''}, clock ${h.clockOffsetMs >= 0 ? '+' : ''}${h.clockOffsetMs} ms ± ${h.clockUncertaintyMs}, corrected)`).join('; ')}`);
  const est = o.instruments.clock.estimate();
  if (est && Math.abs(est.offsetMs) > Math.max(2, est.uncertaintyMs)) notes.push(`server clock differs from the generator's by ${est.offsetMs} ms (±${est.uncertaintyMs}); latencies from server stamps include it`);
  return buildResult({
    spec,
    t0,
    endAt: ranUntil,
    agg,
    finals: o.finals,
    samples: o.instruments.sampler.samples,
    samplerSources: o.instruments.sources,
    samplerProblems: [...o.instruments.sampler.problems],
    publishers: Object.fromEntries(Object.entries(o.publishers).map(([k, p]) => [k, { stats: p.stats, histograms: agg.total }])),
    faults: o.faults,
    workers,
    clock: est,
    aborted: health.aborted,
    notes,
    hosts,
    hostProblems: health.hostProblems,
    tickMs,
  });
}
