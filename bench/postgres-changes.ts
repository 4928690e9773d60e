// `npm run bench:changes`: postgres_changes commit-to-receipt latency at a fixed insert
// rate (default 1,000 inserts/s), with subscribers spread over channels, and the work the
// gateway does per change.
//
//   npm run bench:changes -- [--database postgres|pglite] [--rate 1000] [--seconds 15]
//                            [--members 5] [--channels 100,1000] [--json]
//
// Each phase joins `members` subscribers to each of `channels` channels (`bench:<n>`, the
// seed's binding `project_comments` / `project_id=eq.<n>`), then inserts comments for
// random projects at `rate` per second for `seconds`. Every insert therefore matches
// `members` subscribers whatever the number of channels; running the phases with 10×
// more channels in the same run is the baseline that shows the cost of a change follows
// its matching subscribers, not all of them (candidates evaluated per change, from the
// dispatcher's counters, next to the number of subscriptions on the table).
//
// The gateway runs in this process (so its counters can be read); subscribers and writers
// run in a separate load process that reports its own CPU, so a saturated generator is
// visible. PostgreSQL inserts go straight to the database from the load process (as an
// application would); PGlite can only be written through the gateway, so inserts use the
// comments API there. Latency is recorded per delivery in HDR histograms.
// Figures, not a test: the machine is shared and the numbers are noisy.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import { loadConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/log.js';
import { createGateway } from '../src/server/gateway.js';
import { openDatabase } from '../src/changes/database.js';
import { migrate } from '../src/changes/schema.js';
import type { LoadCommand, LoadReply } from './postgres-changes-load.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    database: { type: 'string', default: 'postgres' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '15' },
    members: { type: 'string', default: '5' },
    channels: { type: 'string', default: '100,1000' },
    'admin-url': { type: 'string', default: process.env.FANOUT_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    json: { type: 'boolean', default: false },
  },
});
const DATABASE = args.database as 'postgres' | 'pglite';
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
const MEMBERS = Number(args.members);
const CHANNELS = args.channels!.split(',').map(Number);
if ((DATABASE !== 'postgres' && DATABASE !== 'pglite') || !(RATE > 0) || !(SECONDS > 0) || !(MEMBERS >= 1) || CHANNELS.some((c) => !(c >= 1))) {
  console.error('usage: postgres-changes.ts [--database postgres|pglite] [--rate n] [--seconds s] [--members m] [--channels c1,c2,...] [--json]');
  process.exit(2);
}
const out = (line: string): void => void (args.json ? process.stderr : process.stdout).write(line + '\n');

function startLoader(): { proc: ChildProcess; request<T extends LoadReply['type']>(cmd: LoadCommand, type: T): Promise<Extract<LoadReply, { type: T }>> } {
  const proc = fork(`${root}/bin/run-ts.js`, [`${root}/bench/postgres-changes-load.ts`], { cwd: root, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return {
    proc,
    request: (cmd, type) =>
      new Promise((resolve, reject) => {
        const onExit = (code: number) => reject(new Error(`load process exited with ${code}`));
        proc.once('exit', onExit);
        proc.once('message', (reply: LoadReply) => {
          proc.off('exit', onExit);
          if (reply.type !== type) reject(new Error(`expected ${type}, got ${reply.type}`));
          else resolve(reply as Extract<LoadReply, { type: typeof type }>);
        });
        proc.send(cmd);
      }),
  };
}

const dataDir = mkdtempSync(join(tmpdir(), 'fanout-bench-changes-'));
let databaseUrl: string | undefined;
let dropDatabase: (() => Promise<void>) | undefined;
const log = createLogger({ level: 'warn', destination: process.stderr });

if (DATABASE === 'postgres') {
  const name = `fanout_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: args['admin-url'] });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(args['admin-url']!);
  url.pathname = `/${name}`;
  databaseUrl = url.toString();
  dropDatabase = async () => {
    const c = new pg.Client({ connectionString: args['admin-url'] });
    await c.connect();
    await c.query(`drop database if exists ${name} with (force)`);
    await c.end();
  };
  const db = await openDatabase({ databaseUrl, dataDir, log });
  await migrate(db);
  await db.close();
}

const config = loadConfig({}, {}, {
  port: 0,
  host: '127.0.0.1',
  dataDir,
  databaseUrl,
  logLevel: 'warn',
  dbStart: 'eager',
  changesReplayMs: 0,
  realtimeMaxChannelsPerClient: 1000,
  realtimeMaxJoinsPerSecond: 10_000_000,
  realtimeMaxEventsPerSecond: 10_000_000,
  maxConnectionsPerUser: 1_000_000,
});
const gateway = await createGateway(config, { logger: log, processMetrics: false });
await gateway.listen();
const runtime = gateway.service('databaseRuntime');
const { dispatcher } = await runtime.parts();
const keys = await gateway.auth.projectKeys();
const wsUrl = `${gateway.url.replace('http', 'ws')}/realtime/v1/websocket`;

interface PhaseResult {
  channels: number;
  members: number;
  subscriptions: number;
  sockets: number;
  joinMs: number;
  done: Extract<LoadReply, { type: 'done' }>;
  perChange: { candidates: number; deliveries: number; rlsChecks: number; rlsQueriesPerSecond: number };
  gatewayCpuPct: number;
  gatewayLoopDelayP99Ms: number;
  /** Server side: capture (commit) → dispatch, from the gateway's change-feed lag histogram (bucket bounds). */
  dispatchLag: { p50Ms: number; p99Ms: number };
}

/** A percentile's bucket upper bound from a Prometheus histogram's cumulative buckets, minus a snapshot taken before. */
async function lagPercentiles(before: Map<number, number>): Promise<{ p50Ms: number; p99Ms: number; buckets: Map<number, number> }> {
  const { values } = await gateway.metrics.changeFeedLag.get();
  const buckets = new Map<number, number>();
  for (const v of values) if (v.metricName?.endsWith('_bucket')) buckets.set(Number(v.labels.le === '+Inf' ? Infinity : v.labels.le), v.value);
  const delta = [...buckets].map(([le, n]) => [le, n - (before.get(le) ?? 0)] as const).sort((a, b) => a[0] - b[0]);
  const total = delta.at(-1)?.[1] ?? 0;
  const at = (q: number) => (delta.find(([, n]) => n >= q * total)?.[0] ?? Infinity) * 1000;
  return { p50Ms: at(0.5), p99Ms: at(0.99), buckets };
}

const results: PhaseResult[] = [];
try {
  out(`postgres_changes bench: ${DATABASE}, ${RATE} inserts/s for ${SECONDS} s, ${MEMBERS} subscribers per channel, channels ${CHANNELS.join(' then ')}`);
  for (const channels of CHANNELS) {
    const loader = startLoader();
    try {
      const ready = await loader.request({ type: 'setup', wsUrl, anonKey: keys.anon, channels, members: MEMBERS, channelsPerSocket: 100 }, 'ready');
      if (ready.failures.length) out(`  join failures: ${ready.failures.join(' | ')}`);
      out(`  ${channels} channels × ${MEMBERS}: ${ready.subscriptions} subscriptions on ${ready.sockets} sockets, joined in ${ready.joinMs} ms`);
      const before = { ...dispatcher.stats };
      const lagBefore = (await lagPercentiles(new Map())).buckets;
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      const cpu0 = process.cpuUsage();
      const t0 = Date.now();
      const write = DATABASE === 'postgres' ? { kind: 'sql' as const, databaseUrl: databaseUrl! } : { kind: 'api' as const, httpUrl: gateway.url, serviceKey: keys.service_role };
      const done = await loader.request({ type: 'run', rate: RATE, seconds: SECONDS, write }, 'done');
      const cpu = process.cpuUsage(cpu0);
      const wall = Date.now() - t0;
      loop.disable();
      const changes = dispatcher.stats.changes - before.changes || 1;
      const lag = await lagPercentiles(lagBefore);
      const result: PhaseResult = {
        channels,
        members: MEMBERS,
        subscriptions: ready.subscriptions,
        sockets: ready.sockets,
        joinMs: ready.joinMs,
        done,
        perChange: {
          candidates: round2((dispatcher.stats.candidates - before.candidates) / changes),
          deliveries: round2((dispatcher.stats.deliveries - before.deliveries) / changes),
          rlsChecks: round2((dispatcher.stats.rlsChecks - before.rlsChecks) / changes),
          rlsQueriesPerSecond: Math.round((dispatcher.stats.rlsQueries - before.rlsQueries) / (wall / 1000)),
        },
        gatewayCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100),
        gatewayLoopDelayP99Ms: Math.round(loop.percentile(99) / 1e4) / 100,
        dispatchLag: { p50Ms: lag.p50Ms, p99Ms: lag.p99Ms },
      };
      results.push(result);
      const s = done.scheduledToReceipt;
      const c = done.commitToReceipt;
      out(`    inserts ${done.inserts} (${done.achievedRate}/s, ${done.insertErrors} failed${done.firstInsertError ? `: ${done.firstInsertError}` : ''})`);
      out(`    deliveries ${done.received}/${done.expected}, lost ${done.lost}, duplicates ${done.duplicates}`);
      out(`    scheduled insert → receipt: p50 ${s.p50Ms} ms, p90 ${s.p90Ms} ms, p99 ${s.p99Ms} ms, p99.9 ${s.p999Ms} ms, max ${s.maxMs} ms`);
      out(`    commit_timestamp → receipt: p50 ${c.p50Ms} ms, p90 ${c.p90Ms} ms, p99 ${c.p99Ms} ms, p99.9 ${c.p999Ms} ms, max ${c.maxMs} ms`);
      out(`    server side, commit → dispatch (histogram buckets): p50 ≤ ${result.dispatchLag.p50Ms} ms, p99 ≤ ${result.dispatchLag.p99Ms} ms`);
      out(
        `    per change: ${result.perChange.candidates} candidates evaluated (of ${ready.subscriptions} subscriptions), ${result.perChange.deliveries} deliveries, ${result.perChange.rlsChecks} RLS checks; ${result.perChange.rlsQueriesPerSecond} RLS queries/s`,
      );
      out(`    gateway CPU ${result.gatewayCpuPct} %, event-loop delay p99 ${result.gatewayLoopDelayP99Ms} ms; load process CPU ${done.loadCpuPct} %, loop delay p99 ${done.loadLoopDelayP99Ms} ms`);
      if (done.loadCpuPct > 90) out('    WARNING: the load process was near saturation; latency figures are suspect');
    } finally {
      loader.proc.send({ type: 'close' } satisfies LoadCommand);
      await new Promise((r) => loader.proc.once('exit', r));
    }
  }
  if (args.json) {
    process.stdout.write(
      JSON.stringify({ database: DATABASE, rate: RATE, seconds: SECONDS, members: MEMBERS, phases: results.map((r) => ({ ...r, done: { ...r.done, scheduledToReceipt: strip(r.done.scheduledToReceipt), commitToReceipt: strip(r.done.commitToReceipt) } })) }, null, 2) + '\n',
    );
  }
} finally {
  await gateway.close();
  await dropDatabase?.();
  rmSync(dataDir, { recursive: true, force: true });
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function strip<T extends { encoded: string }>(s: T): Omit<T, 'encoded'> {
  const { encoded: _encoded, ...rest } = s;
  return rest;
}
