// `npm run bench:capture`: what change capture costs the application's own writes, and
// what it delivers, for the outbox (a trigger per row) and WAL capture (a logical
// replication slot), in one run on one PostgreSQL server.
//
//   npm run bench:capture -- [--rounds 3] [--seconds 20] [--clients 4] [--subscribers 100]
//                            [--rate 1000] [--latency-seconds 20] [--latency-subscribers 500] [--split-cpus] [--json]
//
// Throughput: pgbench (4 clients, one INSERT per transaction into the published table
// `public.bench_items`) for `seconds`, in three modes — none (no capture: no gateway, no
// trigger), outbox (a `fanout serve` with --changes-capture outbox) and wal (--changes-capture
// wal) — with `subscribers` postgres_changes subscribers (one channel each, filtered on its
// own project_id, as the seed's project channels are) connected through supabase-js. The
// modes alternate round after round and each figure is the median of `rounds`.
// Latency: pgbench --rate `rate` for `latency-seconds` with `latency-subscribers`
// subscribers, in outbox and wal mode in the same run: each row carries clock_timestamp()
// from its INSERT, and the receiving client's clock minus that is its commit → receipt time
// (p50/p99/max over every delivery).
//
// --split-cpus puts the database side (the server and pgbench) on CPU 0 and the gateway and
// the subscribers on CPU 1, as on separate hosts: without it, on a 2-core machine the gateway
// decoding and dispatching the changes competes with the database for the same cores, and
// that contention shows up as a cost to the writes.
//
// It starts its own PostgreSQL 15 (wal_level=logical) on a free port in a temporary
// directory, so the machine's shared server is untouched. Figures, not a test: note whether
// the machine was busy.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import WebSocket from 'ws';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { openDatabase } from '../src/changes/database.js';
import { migrate } from '../src/changes/schema.js';
import { createLogger } from '../src/core/log.js';
import { Auth } from '../src/core/auth.js';
import { POSTGRES_BIN, startWalServer, type WalServer } from '../test/helpers/wal-server.js';
import { spawnServe, type ServeProcess } from '../test/helpers/serve-process.js';
import { CAPACITY_ENV } from '../src/load/embedded-gateway.js';
import { TEST_SECRET } from '../test/helpers/gateway.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '20' },
    clients: { type: 'string', default: '4' },
    subscribers: { type: 'string', default: '100' },
    rate: { type: 'string', default: '1000' },
    'latency-seconds': { type: 'string', default: '20' },
    'latency-subscribers': { type: 'string', default: '500' },
    'split-cpus': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const splitCpus = args['split-cpus'] === true;

/** Pins a process and all its threads to one CPU (Linux taskset); children it forks later inherit it. */
function pin(pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** Pins the PostgreSQL server (postmaster and its current processes; new backends inherit) to `cpu`. */
function pinServer(dataDir: string, cpu: number): void {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  pin(postmaster, cpu);
  for (const child of execFileSync('ps', ['-o', 'pid=', '--ppid', String(postmaster)], { encoding: 'utf8' }).split('\n')) if (child.trim()) pin(Number(child), cpu);
}
const num = (name: keyof typeof args): number => {
  const v = Number(args[name]);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`bench:capture: --${name} must be a positive number, got ${JSON.stringify(args[name])}`);
    process.exit(2);
  }
  return v;
};
const rounds = num('rounds');
const seconds = num('seconds');
const clients = num('clients');
const subscribers = num('subscribers');
const rate = num('rate');
const latencySeconds = num('latency-seconds');
const latencySubscribers = num('latency-subscribers');

type Mode = 'none' | 'outbox' | 'wal';
const log = (msg: string) => !args.json && console.error(`[bench:capture] ${msg}`);

const SETUP = `
create table if not exists public.bench_items (id bigint generated always as identity primary key, project_id text not null, body text, sent_at timestamptz not null default clock_timestamp());
grant select on public.bench_items to anon, authenticated;
do $$ begin
  if not exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'bench_items') then
    alter publication supabase_realtime add table public.bench_items;
  end if;
end $$;`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const quantile = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Runs pgbench as the postgres OS user (root runs it through runuser); resolves with its tps. */
function pgbench(server: WalServer, db: string, script: string, extra: string[]): Promise<number> {
  const bin = join(POSTGRES_BIN, 'pgbench');
  const argv = ['-n', '-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', '-c', String(clients), '-j', String(Math.min(clients, 2)), '-f', script, ...extra, db];
  const asRoot = process.getuid?.() === 0;
  const cmd = asRoot ? ['runuser', '-u', 'postgres', '--', bin, ...argv] : [bin, ...argv];
  const child = splitCpus ? spawn('taskset', ['-c', '0', ...cmd]) : spawn(cmd[0]!, cmd.slice(1));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
      if (code === 0 && m) resolve(Number(m[1]));
      else reject(new Error(`pgbench failed (${code}): ${out.slice(-2000)}`));
    }),
  );
}

interface Subscribers {
  latencies: number[];
  received: number;
  close(): Promise<void>;
}

/** `n` supabase-js subscribers, one channel each on project p<i>, spread over clients of 50 channels. */
async function subscribe(url: string, anon: string, n: number): Promise<Subscribers> {
  const state: Subscribers = { latencies: [], received: 0, close: async () => undefined };
  const clientsMade: SupabaseClient[] = [];
  const joins: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 50 === 0) clientsMade.push(createClient(url, anon, { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket as never } as never }));
    const client = clientsMade[clientsMade.length - 1]!;
    joins.push(
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`subscriber ${i} did not subscribe in 30 s`)), 30_000);
        client
          .channel(`bench:${i}`)
          .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'bench_items', filter: `project_id=eq.p${i}` }, (p) => {
            state.received++;
            const sent = Date.parse(String((p.new as { sent_at: string }).sent_at));
            state.latencies.push(Date.now() - sent);
          })
          .on('system', {}, (s: { extension?: string; status?: string }) => {
            if (s.extension === 'postgres_changes' && s.status === 'ok') {
              clearTimeout(timer);
              resolve();
            }
          })
          .subscribe();
      }),
    );
  }
  await Promise.all(joins);
  state.close = async () => {
    for (const c of clientsMade) await c.removeAllChannels();
  };
  return state;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'fanout-bench-capture-'));
  chmodSync(work, 0o755); // pgbench runs as the postgres OS user and reads its script here
  log('starting PostgreSQL 15 with wal_level=logical');
  // Durable writes, as in production: the test servers' fsync=off would make inserts CPU-bound and flatter nothing.
  const server = await startWalServer({ max_connections: '200', fsync: 'on', full_page_writes: 'on', shared_buffers: '128MB' });
  if (splitCpus) {
    pinServer(server.dataDir, 0);
    pin(process.pid, 1);
  }
  const dbName = `bench_capture_${process.pid}`;
  await withClient(server.adminUrl, (c) => c.query(`create database ${dbName}`));
  const url = new URL(server.adminUrl);
  url.pathname = `/${dbName}`;
  const dbUrl = url.toString();
  let gateway: ServeProcess | undefined;
  try {
    const handle = await openDatabase({ databaseUrl: dbUrl, dataDir: work, log: createLogger({ level: 'silent' }) });
    await migrate(handle);
    await handle.exec(SETUP);
    await handle.close();
    const insertFile = join(work, 'insert.sql');
    writeFileSync(insertFile, `\\set p random(0, ${Math.max(subscribers, latencySubscribers) - 1})\ninsert into public.bench_items (project_id, body) values ('p' || :p, 'bench');\n`);
    const anon = (await new Auth(TEST_SECRET).projectKeys()).anon;

    const startGateway = async (mode: 'outbox' | 'wal') => {
      // Every limit a benchmark of one identity would hit is lifted (the load tester's CAPACITY_ENV).
      gateway = await spawnServe(['--database-url', dbUrl, '--changes-capture', mode], work, {
        ...CAPACITY_ENV,
        FANOUT_REALTIME_CONNECT_ERROR_BACKOFF_MS: '0',
      });
      if (splitCpus) pin(gateway.proc.pid!, 1);
      return gateway;
    };
    const stopGateway = async () => {
      if (!gateway) return;
      gateway.proc.kill('SIGTERM');
      await gateway.exited;
      gateway = undefined;
    };
    /** No capture: the cursor says nobody reads the outbox, so the table has no trigger, and no slot exists. */
    const setNone = () =>
      withClient(dbUrl, async (c) => {
        await c.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = current_database()`);
        await c.query(`update realtime.fanout_cursor set capture = 'wal', outbox_until = snapshot, wal_until = null`);
        await c.query('select realtime.fanout_sync_triggers()');
      });
    const truncate = () => withClient(dbUrl, (c) => c.query('truncate public.bench_items; truncate realtime.fanout_changes'));

    const tps: Record<Mode, number[]> = { none: [], outbox: [], wal: [] };
    for (let r = 1; r <= rounds; r++) {
      for (const mode of ['none', 'outbox', 'wal'] as const) {
        await truncate();
        let subs: Subscribers | undefined;
        if (mode === 'none') await setNone();
        else {
          const g = await startGateway(mode);
          subs = await subscribe(g.url, anon, subscribers);
        }
        const t = await pgbench(server, dbName, insertFile, ['-T', String(seconds)]);
        tps[mode].push(t);
        log(`round ${r}/${rounds} ${mode}: ${t.toFixed(0)} inserts/s${subs ? ` (${subs.received} deliveries so far)` : ''}`);
        await subs?.close();
        await stopGateway();
      }
    }

    const latency: Record<'outbox' | 'wal', { p50: number; p99: number; max: number; deliveries: number; inserted: number }> = {} as never;
    for (const mode of ['outbox', 'wal'] as const) {
      await truncate();
      const g = await startGateway(mode);
      const subs = await subscribe(g.url, anon, latencySubscribers);
      await pgbench(server, dbName, insertFile, ['-T', String(latencySeconds), '-R', String(rate)]);
      const inserted = await withClient(dbUrl, async (c) => Number((await c.query<{ n: string }>('select count(*) as n from public.bench_items')).rows[0]!.n));
      const deadline = Date.now() + 10_000;
      while (subs.received < inserted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const sorted = [...subs.latencies].sort((a, b) => a - b);
      latency[mode] = { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN, deliveries: subs.received, inserted };
      log(`latency ${mode}: p50 ${latency[mode].p50} ms, p99 ${latency[mode].p99} ms over ${subs.received}/${inserted} deliveries`);
      await subs.close();
      await stopGateway();
    }

    const med = { none: median(tps.none), outbox: median(tps.outbox), wal: median(tps.wal) };
    const result = {
      settings: { rounds, seconds, clients, subscribers, rate, latencySeconds, latencySubscribers },
      insertsPerSecond: { median: med, samples: tps },
      costVsNoCapture: { outbox: 1 - med.outbox / med.none, wal: 1 - med.wal / med.none },
      commitToReceiptMs: latency,
    };
    if (args.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else {
      const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
      console.log(`\ninsert throughput (pgbench, ${clients} clients, median of ${rounds} × ${seconds} s; ${subscribers} subscribers while capturing${splitCpus ? "; database on CPU 0, gateway and subscribers on CPU 1" : ""})`);
      console.log(`  no capture   ${med.none.toFixed(0)} inserts/s`);
      console.log(`  outbox       ${med.outbox.toFixed(0)} inserts/s  (costs ${pct(result.costVsNoCapture.outbox)})`);
      console.log(`  wal          ${med.wal.toFixed(0)} inserts/s  (costs ${pct(result.costVsNoCapture.wal)}; target ≤ 5 %)`);
      console.log(`\ncommit → receipt at ${rate} inserts/s, ${latencySubscribers} subscribers, ${latencySeconds} s`);
      for (const mode of ['outbox', 'wal'] as const) {
        const l = latency[mode];
        console.log(`  ${mode.padEnd(6)}  p50 ${l.p50} ms  p99 ${l.p99} ms  max ${l.max} ms  (${l.deliveries}/${l.inserted} delivered)`);
      }
    }
  } finally {
    if (gateway) {
      gateway.proc.kill('SIGKILL');
      await gateway.exited;
    }
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench:capture failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
