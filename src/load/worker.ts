// A load-generator worker process. It holds its share of the connections on one event
// loop, reports a tick every second (interval histograms, counters, gauges, fan-out
// records, its own CPU), answers the roll call (roll-call.ts) and, when told to finish,
// its final sequence and uptime accounting. Started by the coordinator with
// child_process.fork; a worker can run several plans one after the other, so a spike
// reuses its workers.
import { Recorder, SCHEDULE_LATENESS } from './recorder.js';
import { TaskQueue } from './min-heap.js';
import { OpenLoopScheduler, hashUnit, type ScheduledStream } from './schedule.js';
import { SseConnection } from './drivers/sse.js';
import { RealtimeUser } from './drivers/realtime.js';
import type { RealtimeDriver } from './drivers/realtime-streams.js';
import { SupabaseJsUser, loadSupabaseJs, type CreateClient } from './drivers/supabase-js.js';
import type { DriverContext } from './drivers/context.js';
import type { CoordinatorMessage, OwedKind, PublishedStreams, WorkerMessage, WorkerPlan } from './plan.js';
import { wallClock } from './clock.js';

const SWEEP_MS = 250;

function send(msg: WorkerMessage): void {
  process.send?.(msg);
}

class WorkerRun implements DriverContext {
  readonly recorder: Recorder;
  readonly tasks: TaskQueue;
  stopping = false;
  /** This host's clock minus the coordinator's (measured by the coordinator; 0 for a local worker). */
  private readonly offsetMs: number;
  private readonly sse: SseConnection[] = [];
  private readonly users: RealtimeDriver[] = [];
  private scheduler: OpenLoopScheduler | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly plan: WorkerPlan,
    createClient: CreateClient | undefined,
  ) {
    this.recorder = new Recorder(plan.workerIndex);
    this.offsetMs = plan.clockOffsetMs ?? 0;
    this.tasks = new TaskQueue(() => this.now());
    if (plan.sse) for (const c of plan.sse.connections) this.sse.push(new SseConnection(c, plan.sse, this));
    const rt = plan.realtime;
    if (rt) for (const u of rt.users) this.users.push(createClient ? new SupabaseJsUser(u, rt, this, createClient) : new RealtimeUser(u, rt, this));
  }

  static async create(plan: WorkerPlan): Promise<WorkerRun> {
    const createClient = plan.realtime?.client === 'supabase-js' ? await loadSupabaseJs() : undefined;
    return new WorkerRun(plan, createClient);
  }

  /**
   * The coordinator's time: every stamp this worker sends and every receive time it takes
   * is on the coordinator's clock, so latencies across generator hosts (a presence update
   * sent on one agent, received on another; a publish from the coordinator) do not include
   * the hosts' clock offsets.
   */
  now(): number {
    return wallClock() - this.offsetMs;
  }

  localAddress(id: number): string | undefined {
    const list = this.plan.localAddresses;
    // Connections are dealt round-robin over workers, so this worker's k-th one has id k·workers + index.
    return list && list.length ? list[Math.floor(id / this.plan.workers) % list.length] : undefined;
  }

  start(t0: number, endAt: number): void {
    this.recorder.startLagProbe();
    const sse = this.plan.sse;
    if (sse) sse.connections.forEach((c, i) => this.tasks.at(t0 + c.at, () => this.sse[i]!.start()));
    const rt = this.plan.realtime;
    if (rt) {
      rt.users.forEach((u, i) => this.tasks.at(t0 + u.at, () => this.users[i]!.start()));
      const streams: ScheduledStream[] = [];
      rt.users.forEach((u, i) => {
        // Spread each user's actions over its interval, starting after it is due to have joined.
        if (rt.presence && rt.presenceIntervalMs > 0) streams.push({ key: `p${i}`, intervalMs: rt.presenceIntervalMs, phaseMs: u.at + Math.round(rt.presenceIntervalMs * (0.5 + hashUnit(u.id))) });
        if (u.sendsDoc && rt.docIntervalMs > 0) streams.push({ key: `d${i}`, intervalMs: rt.docIntervalMs, phaseMs: u.at + 1000 + Math.round(rt.docIntervalMs * hashUnit(u.id + 1)) });
      });
      this.scheduler = new OpenLoopScheduler(streams, t0, endAt, (stream, _k, intended) => {
        const user = this.users[Number(stream.key.slice(1))]!;
        if (stream.key[0] === 'p') user.trackPresence(intended);
        else user.sendDoc(intended);
      }, () => this.now(), (ms) => this.recorder.histograms.recordMs(SCHEDULE_LATENESS, ms));
      this.scheduler.start();
    }
    this.tickTimer = setInterval(() => send(this.tick()), this.plan.tickMs);
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
  }

  /** The tick report, after adding every socket's bytes read since the last one. */
  private tick(): ReturnType<Recorder['tick']> {
    for (const c of this.sse) c.flushWire();
    for (const u of this.users) u.flushWire();
    return this.recorder.tick(this.now());
  }

  private sweep(): void {
    const now = this.now();
    const perfNow = performance.now();
    const timeout = this.plan.sse?.connectTimeoutMs ?? this.plan.realtime?.connectTimeoutMs ?? 10_000;
    for (const c of this.sse) if (c.isConnecting && perfNow - c.connectingSince > timeout) c.timeout();
    for (const u of this.users) {
      if (u.isConnecting && perfNow - u.connectingSince > (this.plan.realtime?.connectTimeoutMs ?? timeout)) u.timeout();
      else u.heartbeat(now);
    }
  }

  /** Marks every subscriber live now; returns how many. */
  rollCall(fromFirst: readonly OwedKind[]): number {
    const kinds: ReadonlySet<string> = new Set(fromFirst);
    let present = 0;
    for (const c of this.sse) present += c.answerRollCall(kinds);
    for (const u of this.users) present += u.answerRollCall(kinds);
    return present;
  }

  rollCallClosed(): void {
    for (const u of this.users) u.rollCallClosed();
  }

  stopPublishing(): PublishedStreams {
    this.scheduler?.stop();
    const out: PublishedStreams = {};
    for (const u of this.users) Object.assign(out, u.published());
    return out;
  }

  finish(published: PublishedStreams): void {
    this.stopping = true;
    this.scheduler?.stop();
    this.tasks.stop();
    const now = this.now();
    const own = this.stopPublishing();
    for (const c of this.sse) c.flushWire();
    for (const u of this.users) u.flushWire();
    // Final accounting is taken before closing, so the test's own closes are not drops.
    const final = this.recorder.final(now, published, own);
    for (const c of this.sse) c.close();
    for (const u of this.users) u.close();
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.recorder.stopLagProbe();
    send(this.recorder.tick(now));
    send(final);
  }
}

let run: WorkerRun | undefined;
let workerIndex = -1;

async function handle(msg: CoordinatorMessage): Promise<void> {
  switch (msg.type) {
    case 'plan':
      workerIndex = msg.plan.workerIndex;
      run = await WorkerRun.create(msg.plan);
      send({ type: 'planned', worker: workerIndex });
      break;
    case 'start':
      run?.start(msg.t0, msg.endAt);
      break;
    case 'roll-call':
      send({ type: 'present', worker: workerIndex, subscribers: run?.rollCall(msg.fromFirst) ?? 0 });
      break;
    case 'roll-call-closed':
      run?.rollCallClosed();
      break;
    case 'stop-publishing':
      send({ type: 'published', worker: workerIndex, published: run?.stopPublishing() ?? {} });
      break;
    case 'finish':
      run?.finish(msg.published);
      run = undefined;
      break;
    case 'exit':
      process.exit(0);
  }
}

process.on('message', (raw: unknown) => {
  handle(raw as CoordinatorMessage).catch((err: unknown) => {
    send({ type: 'fatal', worker: workerIndex, message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  });
});

// The coordinator going away (crash, Ctrl-C) must not leave a worker holding sockets.
process.on('disconnect', () => process.exit(0));
process.on('uncaughtException', (err) => {
  send({ type: 'fatal', worker: workerIndex, message: err.stack ?? err.message });
  process.exit(1);
});
send({ type: 'ready', worker: -1 });
