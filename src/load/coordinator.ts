// Runs one load run: plans the connections over the worker processes, samples the
// server before (idle baseline) and during the run, publishes on open-loop schedules,
// injects faults at their times, merges the workers' ticks as they arrive (live
// progress), then stops publishing, waits for in-flight messages, collects each
// worker's final accounting and builds the result.
import { arrivalOffsets, OpenLoopScheduler, type ScheduledStream } from './schedule.js';
import { RunAggregator } from './aggregate.js';
import { HttpPublisher } from './publishers.js';
import { ServerSampler } from './sampler.js';
import { COORDINATOR, bucketHeadline, buildResult, liveMetrics, type RunResult } from './result.js';
import { Recorder } from './recorder.js';
import { ClockOffsetEstimator } from './clock.js';
import { preflight } from './preflight.js';
import { evaluateThresholds } from './thresholds.js';
import { WorkerPool, MAX_SOCKETS_PER_WORKER } from './pool.js';
import { allocateSourceAddresses, spreadsSourceAddresses, commentInsertRequest, realtimeSocketUrl, sseStreamUrl, sseTopic } from './target.js';
import { commentBody, commentStream } from './drivers/realtime.js';
import type { PublishedStreams, RealtimeUserPlan, SseConnectionPlan, WorkerMessage, WorkerPlan } from './plan.js';
import { paced, type RunSpec } from './spec.js';
import { forecast, type GeneratorCost } from './generator-cost.js';

export interface LiveStatus {
  name: string;
  elapsedS: number;
  durationS: number;
  sseOpen: number;
  ssePlanned: number;
  realtimeJoined: number;
  realtimePlanned: number;
  messagesPerSec: number;
  p99Ms: number | null;
  errors: number;
  serverCpuPct: number | null;
  serverRssMb: number | null;
  generatorLagP99Ms: number | null;
}

/** A progress stream of one SSE load: where connection i subscribes and how stream s is published to. */
export interface SseStreams {
  /** Per stream: id (content id), owner user id. */
  streams: { id: string; userId: string }[];
}

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

export function socketsOf(spec: RunSpec): number {
  return (spec.sse?.connections ?? 0) + (spec.realtime ? spec.realtime.projects * spec.realtime.usersPerProject : 0);
}

export function workersFor(spec: RunSpec): number {
  return Math.max(spec.workers ?? 2, Math.ceil(socketsOf(spec) / MAX_SOCKETS_PER_WORKER));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A worker silent for this long (or whose reports arrive this late) has stopped keeping up with the run. */
function silenceLimitMs(tickMs: number): number {
  return Math.max(3000, 3 * tickMs);
}

/** Splits a run into per-worker plans; connections are dealt round-robin so every worker gets a share of each arrival period. */
export function planWorkers(spec: RunSpec, workers: number, sse: SseStreams | undefined, runId: string, tickMs: number): WorkerPlan[] {
  const addresses = allocateSourceAddresses(spec.target.url, workers, Math.ceil(socketsOf(spec) / workers));
  const plans: WorkerPlan[] = Array.from({ length: workers }, (_, w) => ({
    runId,
    workerIndex: w,
    workers,
    localAddresses: addresses?.[w] ?? null,
    tickMs,
  }));
  const connectTimeoutMs = spec.connectTimeoutMs ?? 10_000;
  const churnMeanMs = Math.max(2000, spec.durationMs / 3);
  if (spec.sse && sse) {
    const s = spec.sse;
    const offsets = arrivalOffsets(s.connections, spec.pattern, spec.rampMs);
    const headers: Record<string, string> = {};
    const key = spec.target.serviceKey ?? spec.target.anonKey;
    if (key && spec.target.kind !== 'sse-url') headers.authorization = `Bearer ${key}`;
    const perWorker: SseConnectionPlan[][] = plans.map(() => []);
    for (let i = 0; i < s.connections; i++) {
      const stream = sse.streams[i % sse.streams.length]!;
      const url = sseStreamUrl(spec.target, s.path, stream.id, stream.userId, i);
      const topic = spec.target.kind === 'sse-url' ? url : sseTopic(s.path, stream.id, stream.userId);
      perWorker[i % workers]!.push({ id: i, url, audience: `sse:${topic}`, stream: topic, at: offsets[i]! });
    }
    plans.forEach((p, w) => {
      p.sse = { connections: perWorker[w]!, headers, reconnect: s.reconnect, reconnectDelayMs: 2000, connectTimeoutMs, pattern: spec.pattern, churnMeanMs };
    });
  }
  if (spec.realtime) {
    const r = spec.realtime;
    const n = r.projects * r.usersPerProject;
    const offsets = arrivalOffsets(n, spec.pattern, spec.rampMs);
    const perWorker: RealtimeUserPlan[][] = plans.map(() => []);
    for (let i = 0; i < n; i++) {
      const p = i % r.projects;
      const u = Math.floor(i / r.projects);
      perWorker[i % workers]!.push({ id: i, project: `${runId}-p${p}`, userKey: `user-${p}-${u}`, at: offsets[i]!, sendsDoc: u === 0 && r.docRate > 0 });
    }
    plans.forEach((p, w) => {
      p.realtime = {
        client: r.client ?? 'raw',
        wsUrl: realtimeSocketUrl(spec.target),
        httpUrl: spec.target.url,
        accessToken: spec.target.anonKey ?? '',
        users: perWorker[w]!,
        presence: r.presence,
        presenceIntervalMs: r.presenceIntervalMs,
        docIntervalMs: r.docRate > 0 ? 1000 / r.docRate : 0,
        comments: r.commentRate > 0,
        commentsTable: { schema: 'public', table: 'project_comments', filterColumn: 'project_id' },
        heartbeatMs: 25_000,
        connectTimeoutMs,
        reconnect: r.reconnect,
        pattern: spec.pattern,
        churnMeanMs,
      };
    });
  }
  return plans;
}

function defaultStreams(count: number, runId: string): SseStreams {
  return { streams: Array.from({ length: count }, (_, i) => ({ id: `${runId}-c${i}`, userId: `${runId}-u${i}` })) };
}

let runCounter = 0;

export async function runLoad(requested: RunSpec, hooks: RunHooks = {}): Promise<RunResult> {
  const pacing = paced(requested);
  const spec = pacing.spec;
  const runId = `lt${Date.now().toString(36)}${(runCounter++).toString(36)}`;
  const tickMs = hooks.tickMs ?? 1000;
  const check = preflight(socketsOf(spec), hooks.pool?.size ?? workersFor(spec), spreadsSourceAddresses(spec.target.url) ? 'spread' : null);
  if (hooks.pool && check.workers > hooks.pool.size) throw new Error(`this run needs ${check.workers} generator processes but the shared pool has ${hooks.pool.size}: ${check.notes.join('; ')}`);
  const workers = hooks.pool?.size ?? check.workers;
  const sse = spec.sse ? await (hooks.prepareSse ? hooks.prepareSse(spec.sse.streams) : Promise.resolve(defaultStreams(spec.sse.streams, runId))) : undefined;
  const plans = planWorkers(spec, workers, sse, runId, tickMs);
  const ownPool = !hooks.pool;
  const gone = hooks.pool?.hostInfo().filter((h) => h.lost) ?? [];
  if (gone.length) throw new Error(`the generator lost ${gone.map((h) => `${h.name} (${h.lost})`).join(', ')} before this run: reconnect it first`);
  const pool = hooks.pool ?? (await WorkerPool.start(workers));
  const sampler = new ServerSampler({ pid: spec.target.pid, metricsUrl: spec.target.metricsUrl });
  const sources = [spec.target.pid !== undefined ? `/proc/${spec.target.pid}` : '', spec.target.metricsUrl ?? ''].filter(Boolean);
  // The coordinator is part of the generator too (it publishes and merges): its lag and CPU count.
  const self = new Recorder(COORDINATOR);
  const clock = new ClockOffsetEstimator();
  let agg: RunAggregator | undefined;
  const schedulers: OpenLoopScheduler[] = [];
  const faultTimers: NodeJS.Timeout[] = [];
  let statusTimer: NodeJS.Timeout | undefined;
  const workerErrors: string[] = [];
  /** Generator hosts that went away or stopped reporting: each makes the run INVALID, named. */
  const hostProblems: string[] = [];
  let aborted: RunResult['aborted'] = null;
  /** Ends the wait for the run's end early (abort-on-fail, a worker process died, an agent was lost). */
  let abort: () => void = () => undefined;
  const aborting = new Promise<void>((resolve) => (abort = resolve));
  let t0 = 0;
  const at = (): number => (t0 ? Math.round((Date.now() - t0) / 100) / 10 : 0);
  try {
    pool.onMessage((msg: WorkerMessage) => {
      if (msg.type === 'tick') agg?.onTick(msg, Date.now());
      else if (msg.type === 'fatal') {
        workerErrors.push(`worker ${msg.worker} on ${pool.hostName(msg.worker)}: ${msg.message}`);
        abort();
      }
    });
    pool.onLost((h) => {
      const problem = `${h.name} (worker${h.workers.length > 1 ? 's' : ''} ${h.workers.join(', ')}) went away at ${at()} s: ${h.lost}`;
      hostProblems.push(problem);
      if (!aborted) aborted = { atS: at(), reason: problem };
      abort();
    });
    // Each worker stamps on the coordinator's clock: its host's offset is measured now, before the plans go out.
    await pool.syncClocks();
    const planned = pool.collect('planned', 60_000);
    plans.forEach((p, i) => pool.send(i, { type: 'plan', plan: { ...p, clockOffsetMs: pool.clockOffsetOf(i) } }));
    await planned;

    // Idle baseline: two explicit samples bracket a quiet period, so the CPU the run adds can be told apart.
    if (sampler.hasSource) await sampler.sampleOnce();
    await sleep(Math.max(hooks.baselineMs ?? 2000, 200));
    if (sampler.hasSource) {
      await sampler.sampleOnce();
      sampler.start();
    }
    t0 = Date.now() + 100;
    const endAt = t0 + spec.durationMs;
    agg = new RunAggregator(t0, t0 + spec.rampMs + 1000);
    const a = agg;
    self.startLagProbe();
    self.tick(Date.now());
    pool.broadcast({ type: 'start', t0, endAt });
    const lateness = (name: string) => (ms: number) => a.total.recordMs(`publish.${name}.lateness`, ms);

    // Coordinator-side publishers, each on its own open-loop schedule.
    const publishers: Record<string, HttpPublisher> = {};
    if (spec.sse && sse && spec.sse.ratePerStream > 0 && spec.target.kind === 'fanout') {
      const pub = (publishers.sse = new HttpPublisher(
        'sse',
        agg.total,
        (json) => {
          const o = json as { seq?: unknown; offset?: unknown } | undefined;
          return typeof o?.seq === 'number' ? o.seq : typeof o?.offset === 'number' ? o.offset : undefined;
        },
        10_000,
        clock,
      ));
      const interval = 1000 / spec.sse.ratePerStream;
      // Publishing starts once the connections have arrived, so every subscriber can see every message.
      const streams: ScheduledStream[] = sse.streams.map((s, i) => ({ key: String(i), intervalMs: interval, phaseMs: spec.rampMs + 500 + Math.round((interval * i) / sse.streams.length) }));
      const path = spec.sse.path;
      const key = spec.target.serviceKey ?? '';
      schedulers.push(
        new OpenLoopScheduler(streams, t0, endAt, (stream, k, intended) => {
          const item = sse.streams[Number(stream.key)]!;
          pub.publish(
            sseTopic(path, item.id, item.userId),
            k + 1,
            {
              url: `${spec.target.url}/api/content/${encodeURIComponent(item.id)}/progress`,
              headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
              body: JSON.stringify({ progress: (k * 7) % 101, stage: 'load', lt: intended, lseq: k + 1 }),
            },
            false,
          );
        }, Date.now, lateness('sse')),
      );
    }
    if (spec.realtime && spec.realtime.commentRate > 0 && spec.target.kind !== 'sse-url') {
      const pub = (publishers.comments = new HttpPublisher('comments', agg.total));
      const r = spec.realtime;
      const interval = 1000 / r.commentRate;
      const streams: ScheduledStream[] = Array.from({ length: r.projects }, (_, p) => ({ key: `${runId}-p${p}`, intervalMs: interval, phaseMs: spec.rampMs + 1000 + Math.round((interval * p) / r.projects) }));
      schedulers.push(
        new OpenLoopScheduler(streams, t0, endAt, (stream, k, intended) => {
          const seq = k + 1;
          const s = commentStream(stream.key);
          pub.publish(s, seq, commentInsertRequest(spec.target, stream.key, `user-${stream.key}`, commentBody({ s, seq, t: intended })), true);
        }, Date.now, lateness('comments')),
      );
    }
    for (const s of schedulers) s.start();

    const faults: RunResult['faults'] = [];
    for (const f of spec.faults ?? []) {
      faultTimers.push(
        setTimeout(() => {
          f.run().then(
            () => faults.push({ atS: Math.round((Date.now() - t0) / 100) / 10, label: f.label, ok: true }),
            (err: unknown) => faults.push({ atS: Math.round((Date.now() - t0) / 100) / 10, label: f.label, ok: false, error: (err as Error).message }),
          );
        }, Math.max(0, t0 + f.atMs - Date.now())),
      );
    }

    // Once a second: the coordinator's own health joins the merge, live status goes out,
    // every worker is checked for having reported lately (a stalled agent or a cut network
    // shows as silence), and (with abortOnFail) latency thresholds are judged on the merged
    // data so far.
    const silentWorkers = new Set<number>();
    const liveFrom = t0 + spec.rampMs + 1000;
    const liveThresholds = spec.thresholds.filter((t) => /\.(p50|p90|p99|p999|max|mean)$/.test(t.metric));
    statusTimer = setInterval(() => {
      a.onTick(self.tick(Date.now()));
      const now = Date.now();
      for (let w = 0; w < workers; w++) {
        const last = a.lastTickAt.get(w) ?? t0;
        if (!silentWorkers.has(w) && !pool.isLost(w) && now - last > silenceLimitMs(tickMs)) {
          silentWorkers.add(w);
          hostProblems.push(`worker ${w} on ${pool.hostName(w)} sent no report for ${Math.round((now - last) / 100) / 10} s (at ${at()} s): its figures are missing or late`);
        }
      }
      if (hooks.onStatus) hooks.onStatus(liveStatus(spec, a, workers, sampler, t0));
      if (spec.abortOnFail && !aborted && Date.now() >= liveFrom) {
        const failed = evaluateThresholds(liveThresholds, liveMetrics(a.total)).find((r) => r.status === 'fail');
        if (failed) {
          aborted = { atS: at(), reason: `${failed.metric} ${failed.actual} failed ${failed.op} ${failed.value}` };
          abort();
        }
      }
    }, 1000);
    let endTimer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((r) => (endTimer = setTimeout(r, Math.max(0, endAt - Date.now())))), aborting]);
    clearTimeout(endTimer);
    const stoppedAt = Math.min(endAt, Date.now());
    if (workerErrors.length) throw new Error(`load workers failed: ${workerErrors.join('; ')}`);

    // Stop publishing, let in-flight messages land, then take the final accounting.
    for (const s of schedulers) s.stop();
    const publishedP = pool.collect('published', 60_000);
    pool.broadcast({ type: 'stop-publishing' });
    const ownPublished = await publishedP;
    await Promise.all(Object.values(publishers).map((p) => p.drain()));
    await sleep(spec.drainMs ?? 1500);
    const published: PublishedStreams = {};
    for (const p of Object.values(publishers)) Object.assign(published, p.published);
    for (const m of ownPublished) Object.assign(published, m.published);
    const finalsP = pool.collect('final', 60_000);
    pool.broadcast({ type: 'finish', published });
    const finals = await finalsP;
    await sleep(Math.min(300, tickMs));
    sampler.stop();
    if (statusTimer) clearInterval(statusTimer);
    self.stopLagProbe();
    a.onTick(self.tick(Date.now()));
    const ranUntil = aborted ? stoppedAt : endAt;
    const notes = [...check.notes, ...(pacing.note ? [pacing.note] : []), ...forecast(spec, workers, hooks.generatorCost).notes];
    for (const [w, delay] of a.maxTickDelayMs) {
      if (w !== COORDINATOR && delay > silenceLimitMs(tickMs)) hostProblems.push(`reports from worker ${w} on ${pool.hostName(w)} arrived up to ${Math.round(delay)} ms late: that host lagged behind the run`);
    }
    const hosts = pool.hostInfo();
    if (hosts.some((h) => h.name !== 'local')) notes.push(`generator hosts: ${hosts.map((h) => `${h.name} (${h.workers.length} worker${h.workers.length > 1 ? 's' : ''}, clock ${h.clockOffsetMs >= 0 ? '+' : ''}${h.clockOffsetMs} ms ± ${h.clockUncertaintyMs}, corrected)`).join('; ')}`);
    const est = clock.estimate();
    if (est && Math.abs(est.offsetMs) > Math.max(2, est.uncertaintyMs)) notes.push(`server clock differs from the generator's by ${est.offsetMs} ms (±${est.uncertaintyMs}); latencies from server stamps include it`);
    return buildResult({
      spec,
      t0,
      endAt: ranUntil,
      agg,
      finals,
      samples: sampler.samples,
      samplerSources: sources,
      samplerProblems: [...sampler.problems],
      publishers: Object.fromEntries(Object.entries(publishers).map(([k, p]) => [k, { stats: p.stats, histograms: agg!.total }])),
      faults,
      workers,
      clock: est,
      aborted,
      notes,
      hosts,
      hostProblems,
      tickMs,
    });
  } finally {
    for (const s of schedulers) s.stop();
    for (const t of faultTimers) clearTimeout(t);
    if (statusTimer) clearInterval(statusTimer);
    sampler.stop();
    if (ownPool) await pool.close();
  }
}

function liveStatus(spec: RunSpec, agg: RunAggregator, workers: number, sampler: ServerSampler, t0: number): LiveStatus {
  const b = agg.latestComplete(workers);
  const g = agg.gauges();
  const last = sampler.samples[sampler.samples.length - 1];
  const lat = b ? RunAggregator.bucketLatency(b, ['sse.latency_e2e', 'realtime.broadcast', 'realtime.presence', 'realtime.comments']) ?? bucketHeadline(b, 'sse') : null;
  return {
    name: spec.name,
    elapsedS: Math.max(0, Math.round((Date.now() - t0) / 1000)),
    durationS: Math.round(spec.durationMs / 1000),
    sseOpen: g['sse.open'] ?? 0,
    ssePlanned: spec.sse?.connections ?? 0,
    realtimeJoined: g['realtime.joined'] ?? 0,
    realtimePlanned: spec.realtime ? spec.realtime.projects * spec.realtime.usersPerProject : 0,
    messagesPerSec: b ? (b.counters.get('sse.messages') ?? 0) + (b.counters.get('realtime.frames') ?? 0) : 0,
    p99Ms: lat?.p99 ?? null,
    errors: [...agg.errors.values()].reduce((a, c) => a + c, 0),
    serverCpuPct: last?.cpuPct ?? null,
    serverRssMb: last?.rssBytes ? Math.round(last.rssBytes / 1048576) : null,
    generatorLagP99Ms: b ? b.histograms.summary('generator.lag').p99 : null,
  };
}
