// Benchmark (figures, not a test): 1,000 Realtime channels × 10 members = 10,000 sockets.
//
//   npm run bench:realtime -- [--channels 1000] [--members 10] [--procs 5] [--steps 10]
//                             [--track-rate 2000] [--rates 1,2,4] [--duration 10]
//
// The gateway runs in its own process; the members are raw `ws` sockets speaking the
// Phoenix 2.0.0 protocol from several generator processes, each bound to its own source
// address (127.0.0.10, .11, ...). Reported:
//   - join time (phx_join → reply), presence propagation (track → presence_diff at every
//     member of the channel), broadcast delivery (kind-3 push → kind-4 at the 9 others):
//     p50/p99 from HDR histograms merged across generators, delivered msgs/s, and loss,
//     duplicates and reordering from per-sender sequence numbers;
//   - RSS per member: the regression slope of the gateway's RSS (after a full GC) against
//     members from the first step on, with its fit, next to a bare `ws` server's RSS per
//     socket measured in the same run the same way. The step from the idle server to the
//     first step is reported on its own: it is mostly V8's young generation, touched once
//     under the first load and kept (up to 2 × --max-semi-space-size), a one-off cost that
//     a fit through the idle point would spread over the members. The fit through the idle
//     point is printed too, for comparison with earlier runs;
//   - gateway and generator CPU and event-loop lag; a generator over 90 % CPU makes the run invalid.
import { fork, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import type { LoadCommand, LoadReply, LoadReport, MemberSpec } from './realtime-load-process.js';
import type { ServerCommand, ServerReply } from './realtime-server-process.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const CHANNELS = Number(option('channels', '1000'));
const MEMBERS = Number(option('members', '10'));
const PROCS = Number(option('procs', '5'));
const STEPS = Number(option('steps', '10'));
const TRACK_RATE = Number(option('track-rate', '2000'));
const RATES = option('rates', '1,2,4').split(',').map(Number);
const DURATION_S = Number(option('duration', '10'));

/** A forked child driven by request/reply messages over IPC. */
class Child<Cmd, Reply extends { type: string }> {
  private readonly waiting: { type: string; resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private readonly proc: ChildProcess;
  readonly exited: Promise<void>;

  constructor(script: string, args: string[], execArgv: string[] = []) {
    this.proc = fork(`${root}/bin/run-ts.js`, [`${root}/bench/${script}`, ...args], { cwd: root, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (reply: Reply) => {
      const i = this.waiting.findIndex((w) => w.type === reply.type);
      if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(reply);
    });
    this.exited = new Promise((resolve) =>
      this.proc.on('exit', () => {
        for (const w of this.waiting.splice(0)) w.reject(new Error(`${script} exited while waiting for ${w.type}`));
        resolve();
      }),
    );
  }

  next<T extends Reply['type']>(type: T): Promise<Extract<Reply, { type: T }>> {
    return new Promise((resolve, reject) => this.waiting.push({ type, resolve: resolve as (r: Reply) => void, reject }));
  }

  request<T extends Reply['type']>(cmd: Cmd, type: T): Promise<Extract<Reply, { type: T }>> {
    const reply = this.next(type);
    this.proc.send(cmd as object);
    return reply;
  }

  send(cmd: Cmd): void {
    if (this.proc.connected) this.proc.send(cmd as object);
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

type Server = Child<ServerCommand, ServerReply>;
type Generator = Child<LoadCommand, LoadReply>;

async function startServer(mode: 'gateway' | 'bare'): Promise<{ server: Server; url: string; key: string }> {
  // FANOUT_BENCH_PROFILE=<dir> writes a CPU profile of the server process there.
  const profile = process.env.FANOUT_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.FANOUT_BENCH_PROFILE}`] : [];
  const server: Server = new Child('realtime-server-process.ts', [mode], ['--expose-gc', ...profile]);
  const ready = await server.next('ready');
  return { server, url: ready.url, key: ready.key };
}

async function stopServer(server: Server): Promise<void> {
  server.send({ cmd: 'stop' });
  const timer = setTimeout(() => server.kill(), 10_000);
  await server.exited;
  clearTimeout(timer);
}

/** Least-squares fit y = slope·x + intercept, with r². */
type Fit = { slope: number; intercept: number; r2: number };

function regression(points: [number, number][]): Fit {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const ssTot = points.reduce((a, [, y]) => a + (y - my) ** 2, 0);
  const ssRes = points.reduce((a, [x, y]) => a + (y - (slope * x + intercept)) ** 2, 0);
  return { slope, intercept, r2: ssTot ? 1 - ssRes / ssTot : 1 };
}

type MemorySample = Extract<ServerReply, { type: 'memory' }> & { members: number };

/**
 * A server's memory per member: RSS and JS heap fitted from the first step on, the one-off
 * step from the idle server to the first step (and how much of it is V8's young
 * generation), and the RSS fit through the idle point that earlier runs reported.
 */
function memoryFits(samples: MemorySample[]): { rss: Fit; heap: Fit; rssFromIdle: Fit; firstStep: number; youngStep: number } {
  const loaded = samples.slice(1);
  const rss = regression(loaded.map((p) => [p.members, p.rss]));
  const [idle, first] = [samples[0]!, samples[1]!];
  return {
    rss,
    heap: regression(loaded.map((p) => [p.members, p.heapUsed])),
    rssFromIdle: regression(samples.map((p) => [p.members, p.rss])),
    // What the first step added beyond the per-member slope.
    firstStep: first.rss - idle.rss - rss.slope * first.members,
    youngStep: first.youngGeneration - idle.youngGeneration,
  };
}

const kib = (bytes: number): string => (bytes / 1024).toFixed(2);
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

function merge(encoded: string[]): hdr.Histogram {
  const total = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  for (const e of encoded) total.add(hdr.decodeFromCompressedBase64(e));
  return total;
}

const ms = (us: number): string => (us / 1000).toFixed(1);
const percentiles = (h: hdr.Histogram): string => `p50 ${ms(h.getValueAtPercentile(50))} ms · p99 ${ms(h.getValueAtPercentile(99))} ms · max ${ms(h.maxValue)} ms (n=${h.totalCount})`;

async function reports(generators: Generator[]): Promise<LoadReport[]> {
  return Promise.all(generators.map((g) => g.request({ cmd: 'report' }, 'report')));
}

function saturation(rs: LoadReport[]): string {
  const worst = Math.max(...rs.map((r) => r.cpuMs / r.wallMs));
  const lag = Math.max(...rs.map((r) => r.loopP99Ms));
  const stall = Math.max(...rs.map((r) => r.loopMaxMs));
  return `generators: max CPU ${(worst * 100).toFixed(0)} % of a core, event-loop p99 ${lag.toFixed(0)} ms / max ${stall.toFixed(0)} ms${worst > 0.9 ? ' — SATURATED: figures invalid' : ''}`;
}

/** Channel c's member m goes to generator (c·M + m) mod P: every channel spans processes. */
function slices(fromChannel: number, toChannel: number): MemberSpec[][] {
  const out: MemberSpec[][] = Array.from({ length: PROCS }, () => []);
  for (let c = fromChannel; c < toChannel; c++) for (let m = 0; m < MEMBERS; m++) out[(c * MEMBERS + m) % PROCS]!.push({ channel: c, member: m });
  return out;
}

async function waitUntil(probe: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function main(): Promise<void> {
  const total = CHANNELS * MEMBERS;
  const perStep = Math.ceil(CHANNELS / STEPS);
  console.log(`realtime-channels: ${CHANNELS} channels × ${MEMBERS} members = ${total} sockets, ${PROCS} generator processes, ${STEPS} steps`);
  // Latency on a shared machine depends on what else runs: say how busy it was.
  const load = (): string => `load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs`;
  console.log(`machine: ${load()} at start`);
  const generators: Generator[] = Array.from({ length: PROCS }, () => new Child('realtime-load-process.ts', []));
  const address = (i: number): string => `127.0.0.${10 + i}`;
  const connect = (url: string, key: string, parts: MemberSpec[][], join: boolean): Promise<unknown> =>
    Promise.all(generators.map((g, i) => g.request({ cmd: 'connect', url, key, localAddress: address(i), members: parts[i]!, join, concurrency: 50 }, 'connected')));
  const closeAll = (): Promise<unknown> => Promise.all(generators.map((g) => g.request({ cmd: 'closeAll' }, 'closed')));
  const servers: Server[] = [];

  try {
    // ---- baseline: a bare ws server holding the same number of sockets
    const bare = await startServer('bare');
    servers.push(bare.server);
    const bareSamples: MemorySample[] = [{ members: 0, ...(await bare.server.request({ cmd: 'memory' }, 'memory')) }];
    for (let s = 0; s < STEPS; s++) {
      await connect(bare.url, '', slices(s * perStep, Math.min(CHANNELS, (s + 1) * perStep)), false);
      bareSamples.push({ members: Math.min(total, (s + 1) * perStep * MEMBERS), ...(await bare.server.request({ cmd: 'memory' }, 'memory')) });
    }
    await closeAll();
    await stopServer(bare.server);
    await reports(generators); // discard the baseline phase's counters

    // ---- the gateway: join and track in steps, sampling memory after each
    const gw = await startServer('gateway');
    servers.push(gw.server);
    const samples: MemorySample[] = [{ members: 0, ...(await gw.server.request({ cmd: 'memory' }, 'memory')) }];
    let joinWallMs = 0;
    let expectedDiffs = 0;
    let presenceComplete = true;
    for (let s = 0; s < STEPS; s++) {
      const from = s * perStep;
      const to = Math.min(CHANNELS, (s + 1) * perStep);
      const started = Date.now();
      await connect(gw.url, gw.key, slices(from, to), true);
      joinWallMs += Date.now() - started;
      await Promise.all(generators.map((g) => g.request({ cmd: 'track', ratePerSec: TRACK_RATE / PROCS }, 'tracked')));
      expectedDiffs += (to - from) * MEMBERS * MEMBERS;
      const done = await waitUntil(async () => {
        const p = await Promise.all(generators.map((g) => g.request({ cmd: 'progress' }, 'progress')));
        return p.reduce((a, x) => a + x.diffs, 0) >= expectedDiffs;
      }, 30_000);
      presenceComplete &&= done;
      const mem = await gw.server.request({ cmd: 'memory' }, 'memory');
      samples.push({ members: to * MEMBERS, ...mem });
      process.stdout.write(`  step ${s + 1}/${STEPS}: ${to * MEMBERS} members, RSS ${(mem.rss / 2 ** 20).toFixed(0)} MiB\n`);
    }
    const joinPhase = await reports(generators);
    const joinStats = await gw.server.request({ cmd: 'stats' }, 'stats');

    // ---- broadcast: member 0 of every channel sends; the other members receive
    const broadcastResults: string[] = [];
    for (const rate of RATES) {
      await gw.server.request({ cmd: 'stats' }, 'stats');
      const sent = (await Promise.all(generators.map((g) => g.request({ cmd: 'broadcast', perSenderRate: rate, durationMs: DURATION_S * 1000 }, 'broadcasted')))).reduce((a, r) => a + r.sent, 0);
      const expected = sent * (MEMBERS - 1);
      await waitUntil(async () => {
        const p = await Promise.all(generators.map((g) => g.request({ cmd: 'progress' }, 'progress')));
        return p.reduce((a, x) => a + x.broadcastsReceived, 0) >= expected;
      }, 10_000);
      const server = await gw.server.request({ cmd: 'stats' }, 'stats');
      const rs = await reports(generators);
      const received = rs.reduce((a, r) => a + r.broadcastsReceived, 0);
      const h = merge(rs.map((r) => r.broadcast));
      broadcastResults.push(
        [
          `broadcast at ${rate}/s per channel (${(rate * CHANNELS).toLocaleString()} publishes/s, ${(rate * CHANNELS * (MEMBERS - 1)).toLocaleString()} deliveries/s offered) for ${DURATION_S} s:`,
          `  delivery  ${percentiles(h)}`,
          `  delivered ${received.toLocaleString()} of ${expected.toLocaleString()} (${Math.round(received / DURATION_S).toLocaleString()} msgs/s); lost ${rs.reduce((a, r) => a + r.lost, 0)}, duplicates ${rs.reduce((a, r) => a + r.duplicates, 0)}, reordered ${rs.reduce((a, r) => a + r.reordered, 0)}`,
          `  gateway CPU ${((server.cpuMs / server.wallMs) * 100).toFixed(0)} % of a core, event-loop p99 ${server.loopP99Ms.toFixed(0)} ms / max ${server.loopMaxMs.toFixed(0)} ms, one sweep over all sockets ${server.sweepMs.toFixed(1)} ms; ${saturation(rs)}`,
        ].join('\n'),
      );
    }

    // ---- report
    const gateway = memoryFits(samples);
    const bareWs = memoryFits(bareSamples);
    const joins = merge(joinPhase.map((r) => r.join));
    const presence = merge(joinPhase.map((r) => r.presence));
    console.log(`\n## Results (${load()} at the end)`);
    console.log(`join      ${percentiles(joins)}; ${total} joins in ${(joinWallMs / 1000).toFixed(1)} s (${Math.round(total / (joinWallMs / 1000))}/s at 50 in flight per generator); failed ${joinPhase.reduce((a, r) => a + r.joinsFailed + r.connectFailed, 0)}`);
    console.log(`presence  ${percentiles(presence)}; ${presence.totalCount} of ${expectedDiffs} diffs${presenceComplete ? '' : ' (INCOMPLETE)'}; tracks at ${TRACK_RATE}/s`);
    console.log(`          gateway CPU ${((joinStats.cpuMs / joinStats.wallMs) * 100).toFixed(0)} % during join+track, event-loop max ${joinStats.loopMaxMs.toFixed(0)} ms; ${saturation(joinPhase)}`);
    for (const r of broadcastResults) console.log(r);
    const range = `${samples[1]!.members.toLocaleString()}–${total.toLocaleString()}`;
    console.log(`memory    gateway RSS ${kib(gateway.rss.slope)} KiB per member over ${range} members (r² ${gateway.rss.r2.toFixed(3)}), JS heap ${kib(gateway.heap.slope)} KiB per member (r² ${gateway.heap.r2.toFixed(3)})`);
    console.log(`          bare ws server RSS ${kib(bareWs.rss.slope)} KiB per socket over the same range (r² ${bareWs.rss.r2.toFixed(3)}) — same run, same sockets: gateway ${(gateway.rss.slope / bareWs.rss.slope).toFixed(2)}× bare`);
    console.log(`          one-off at the first step (not per member): gateway RSS +${mib(gateway.firstStep)} MiB, of which V8's young generation +${mib(gateway.youngStep)} MiB; bare +${mib(bareWs.firstStep)} MiB (young generation +${mib(bareWs.youngStep)} MiB)`);
    console.log(`          fit through the idle point (one-off included): gateway ${kib(gateway.rssFromIdle.slope)} KiB, bare ${kib(bareWs.rssFromIdle.slope)} KiB (${(gateway.rssFromIdle.slope / bareWs.rssFromIdle.slope).toFixed(2)}×)`);
    console.log(`          points (members, MiB): ${samples.map((p) => `${p.members}:${mib(p.rss)}`).join(' ')}`);
  } finally {
    await closeAll().catch(() => undefined);
    for (const s of servers) await stopServer(s).catch(() => s.kill());
    for (const g of generators) g.kill();
  }
}

await main();
