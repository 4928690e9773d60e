// `npm run bench:sse`: idle-stream memory and one-event fan-out latency of the Fanout
// gateway next to a bare `node:http` SSE server, measured in the same run, each server
// in its own child process and the streams held by separate load processes.
//
//   npm run bench:sse -- [--connections 19000] [--rounds 30] [--fanout-at 10000] [--servers bare,gateway,cluster] [--json]
//
// `cluster` is two gateway processes joined by the Redis bus (`--redis-url`), each holding
// half of every load process's streams: the event is published on the first and reaches
// the second through Redis, so the socket writes are spread over both cores.
//
// Memory per connection is the slope of a least-squares line through (open streams,
// RSS after GC) at several plateaus (0, 25, 50, 75, 100 % of N), with its r². Fan-out
// latency is publish time (`ts`, stamped by the server into the payload) to receipt in a
// load process, for every stream, over `rounds` publishes, merged in an HDR histogram.
// Figures, not a pass/fail test: the machine is shared and the numbers are noisy.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { cleanupBus } from './bus-cleanup.js';
import { startServerProcess, until, type ServerProcess } from './sse-harness.js';
import type { LoadCommand, LoadReply } from './sse-load-process.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '19000' },
    rounds: { type: 'string', default: '30' },
    'fanout-at': { type: 'string', default: '10000' },
    'per-loader': { type: 'string', default: '6500' },
    servers: { type: 'string', default: 'bare,gateway' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    json: { type: 'boolean', default: false },
  },
});

const N = Number(args.connections);
const ROUNDS = Number(args.rounds);
const PER_LOADER = Math.min(9000, Number(args['per-loader']));
type ServerKind = 'bare' | 'gateway' | 'cluster';
const SERVER_KINDS: readonly string[] = ['bare', 'gateway', 'cluster'];
const SERVERS = args.servers!.split(',') as ServerKind[];
if (!Number.isInteger(N) || N < 1 || !Number.isInteger(ROUNDS) || ROUNDS < 1 || SERVERS.some((s) => !SERVER_KINDS.includes(s))) {
  console.error('usage: sse-fanout.ts [--connections N] [--rounds R] [--fanout-at n,...] [--per-loader n] [--servers bare,gateway,cluster] [--redis-url URL] [--json]');
  process.exit(2);
}
const FANOUT_AT = new Set([...args['fanout-at']!.split(',').map(Number).filter((n) => n > 0 && n < N), N]);
const PLATEAUS = [...new Set([0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(f * N)).concat([...FANOUT_AT]))].sort((a, b) => a - b);
const log = (line: string): void => void (args.json ? process.stderr : process.stdout).write(line + '\n');

interface Loader {
  proc: ChildProcess;
  request<T extends LoadReply['type']>(cmd: LoadCommand | null, type: T): Promise<Extract<LoadReply, { type: T }>>;
}

function startLoader(): Loader {
  const proc = fork(`${root}/bin/run-ts.js`, [`${root}/bench/sse-load-process.ts`], { cwd: root, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting: { type: string; resolve: (r: LoadReply) => void }[] = [];
  proc.on('message', (reply: LoadReply) => {
    const i = waiting.findIndex((w) => w.type === reply.type);
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(reply);
  });
  return {
    proc,
    request: (cmd, type) => {
      const reply = new Promise<Extract<LoadReply, { type: typeof type }>>((resolve) => waiting.push({ type, resolve: resolve as (r: LoadReply) => void }));
      if (cmd) proc.send(cmd);
      return reply;
    },
  };
}

interface Fit {
  slope: number;
  intercept: number;
  r2: number;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

function fit(points: [number, number][]): Fit {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
    syy += (y - my) ** 2;
  }
  const slope = sxx ? sxy / sxx : 0;
  return { slope, intercept: my - slope * mx, r2: sxx && syy ? (sxy * sxy) / (sxx * syy) : 0 };
}

interface FanoutResult {
  streams: number;
  rounds: number;
  deliveries: number;
  missed: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Median time the server spent in the publish call (its synchronous write loop over every stream). */
  serverSyncMsP50: number;
  /** Median time until the server had also issued every socket write (Node defers them to the next tick). */
  serverFlushMsP50: number;
  /** Highest event-loop utilization of any load process during a round: near 1 means the generator, not the server, set the pace. */
  loaderEluMax: number;
}

interface ServerResult {
  server: ServerKind;
  plateaus: { streams: number; rssBytes: number; heapUsedBytes: number }[];
  rssPerConnBytes: Fit;
  heapPerConnBytes: Fit;
  fanout: FanoutResult[];
  openFailures: number;
}

const CLUSTER_PREFIX = `benchsse${process.pid}`;

/** The processes under test: one server, or the two nodes of a cluster over the Redis bus. */
async function startNodes(kind: ServerKind): Promise<ServerProcess[]> {
  if (kind !== 'cluster') return [await startServerProcess(kind)];
  const env = { FANOUT_BUS: 'redis', FANOUT_BUS_PREFIX: CLUSTER_PREFIX, REDIS_URL: args['redis-url'] };
  return Promise.all([startServerProcess('gateway', env), startServerProcess('gateway', env)]);
}

/** Splits `count` into `parts` near-equal shares. */
const shares = (count: number, parts: number): number[] =>
  Array.from({ length: parts }, (_, j) => Math.round((count * (j + 1)) / parts) - Math.round((count * j) / parts));

async function measure(kind: ServerKind, phase: number): Promise<ServerResult> {
  log(`\n[${kind}] starting server and ${Math.ceil(N / PER_LOADER)} load processes`);
  const nodes = await startNodes(kind);
  // Events are published on the first node; in a cluster they reach the second through the bus.
  const publisher = nodes[0]!;
  const connections = async (): Promise<number> => (await Promise.all(nodes.map((n) => n.request({ cmd: 'stats' }, 'stats')))).reduce((sum, s) => sum + s.connections, 0);
  const memory = async (): Promise<{ connections: number; rss: number; heapUsed: number }> =>
    (await Promise.all(nodes.map((n) => n.memory()))).reduce((sum, m) => ({ connections: sum.connections + m.connections, rss: sum.rss + m.rss, heapUsed: sum.heapUsed + m.heapUsed }), { connections: 0, rss: 0, heapUsed: 0 });
  const loaders = Array.from({ length: Math.ceil(N / PER_LOADER) }, startLoader);
  const counts = loaders.map(() => 0);
  const result: ServerResult = { server: kind, plateaus: [], rssPerConnBytes: fit([]), heapPerConnBytes: fit([]), fanout: [], openFailures: 0 };
  let seq = 0;
  try {
    for (const target of PLATEAUS) {
      // Spread the new streams over the loaders, each from its own source address.
      const current = counts.reduce((a, b) => a + b, 0);
      const opens = loaders.map((loader, i) => {
        const want = shares(target, loaders.length)[i]! - counts[i]!;
        if (want <= 0) return Promise.resolve();
        counts[i]! += want;
        // Each loader spreads its streams evenly over the nodes, one node at a time.
        return shares(want, nodes.length).reduce(
          (previous, count, j) =>
            previous.then(async () => {
              const node = nodes[j]!;
              const r = await loader.request({ cmd: 'open', url: node.url, path: node.path, token: node.token, count, localAddress: `127.0.${10 + phase}.${2 + i}` }, 'opened');
              result.openFailures += r.failed;
              if (r.failed) log(`[${kind}] ${r.failed} streams failed to open: ${r.firstError}`);
            }),
          Promise.resolve(),
        );
      });
      const started = Date.now();
      await Promise.all(opens);
      await until(async () => (await connections()) >= target - result.openFailures, 30_000);
      const mem = await memory();
      result.plateaus.push({ streams: mem.connections, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed });
      log(`[${kind}] ${mem.connections} streams (+${target - current} in ${Date.now() - started} ms): rss ${(mem.rss / 2 ** 20).toFixed(1)} MB, heap ${(mem.heapUsed / 2 ** 20).toFixed(1)} MB`);

      if (FANOUT_AT.has(target)) {
        const rounds: { maxUs: number; elu: number; syncMs: number; flushMs: number }[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          seq++;
          await Promise.all(loaders.map((l) => l.request({ cmd: 'arm', seq, timeoutMs: 15_000 }, 'armed')));
          const done = Promise.all(loaders.map((l) => l.request(null, 'round')));
          const { syncMs, flushMs } = await publisher.request({ cmd: 'publish', seq }, 'published');
          const per = await done;
          rounds.push({ maxUs: Math.max(...per.map((p) => p.maxUs)), elu: Math.max(...per.map((p) => p.elu)), syncMs, flushMs });
          await new Promise((res) => setTimeout(res, 100));
        }
        const reports = await Promise.all(loaders.map((l) => l.request({ cmd: 'report' }, 'report')));
        const merged = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
        for (const rep of reports) merged.add(hdr.decodeFromCompressedBase64(rep.histogram));
        const f: FanoutResult = {
          streams: mem.connections,
          rounds: ROUNDS,
          deliveries: reports.reduce((s, r) => s + r.received, 0),
          missed: reports.reduce((s, r) => s + r.missed, 0),
          p50Ms: merged.getValueAtPercentile(50) / 1000,
          p99Ms: merged.getValueAtPercentile(99) / 1000,
          maxMs: merged.maxValue / 1000,
          loaderEluMax: Math.max(...rounds.map((r) => r.elu)),
          serverSyncMsP50: median(rounds.map((r) => r.syncMs)),
          serverFlushMsP50: median(rounds.map((r) => r.flushMs)),
        };
        result.fanout.push(f);
        log(`[${kind}] fan-out to ${f.streams}: p50 ${f.p50Ms.toFixed(1)} ms, p99 ${f.p99Ms.toFixed(1)} ms, max ${f.maxMs.toFixed(1)} ms over ${f.rounds} publishes; server write loop p50 ${f.serverSyncMsP50.toFixed(1)} ms, all writes issued p50 ${f.serverFlushMsP50.toFixed(1)} ms (${f.deliveries} deliveries, ${f.missed} missed)`);
      }
    }
  } finally {
    await Promise.all(loaders.map((l) => l.request({ cmd: 'close' }, 'closed')));
    for (const l of loaders) l.proc.kill();
    await Promise.all(nodes.map((n) => n.stop()));
    if (kind === 'cluster') await cleanupBus('redis', CLUSTER_PREFIX, { redisUrl: args['redis-url']! });
  }
  result.rssPerConnBytes = fit(result.plateaus.map((p) => [p.streams, p.rssBytes]));
  result.heapPerConnBytes = fit(result.plateaus.map((p) => [p.streams, p.heapUsedBytes]));
  return result;
}

const results: ServerResult[] = [];
for (const [phase, kind] of SERVERS.entries()) results.push(await measure(kind, phase));

const kb = (b: number): string => (b / 1024).toFixed(2);
const bare = results.find((r) => r.server === 'bare');
log('\nSSE idle memory per stream (slope over plateaus, after GC) and one-event fan-out latency (publish ts -> receipt)');
log(`streams: ${N}, plateaus: ${PLATEAUS.join(' / ')}, rounds per fan-out: ${ROUNDS}`);
log('server   | RSS/conn KB (r²)  | heap/conn KB | vs bare | fan-out to | p50 ms | p99 ms | max ms | missed | write loop / flushed ms | loader ELU max');
log('---------|-------------------|--------------|---------|------------|--------|--------|--------|--------|------------------------|---------------');
for (const r of results) {
  const ratio = bare && r !== bare ? `${(r.rssPerConnBytes.slope / bare.rssPerConnBytes.slope).toFixed(2)}x` : '-';
  const head = `${r.server.padEnd(8)} | ${`${kb(r.rssPerConnBytes.slope)} (${r.rssPerConnBytes.r2.toFixed(3)})`.padEnd(17)} | ${kb(r.heapPerConnBytes.slope).padEnd(12)} | ${ratio.padEnd(7)}`;
  for (const [i, f] of r.fanout.entries()) {
    const lead = i === 0 ? head : `${''.padEnd(8)} | ${''.padEnd(17)} | ${''.padEnd(12)} | ${''.padEnd(7)}`;
    log(`${lead} | ${String(f.streams).padEnd(10)} | ${f.p50Ms.toFixed(1).padEnd(6)} | ${f.p99Ms.toFixed(1).padEnd(6)} | ${f.maxMs.toFixed(1).padEnd(6)} | ${String(f.missed).padEnd(6)} | ${`${f.serverSyncMsP50.toFixed(1)} / ${f.serverFlushMsP50.toFixed(1)}`.padEnd(22)} | ${f.loaderEluMax.toFixed(2)}`);
  }
}
if (args.json) process.stdout.write(JSON.stringify({ connections: N, rounds: ROUNDS, plateaus: PLATEAUS, results }, null, 2) + '\n');
