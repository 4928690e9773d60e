// `npm run bench:bus`: cross-node publish-to-receipt latency through each bus, measured
// in the same run. For `memory` (one gateway, no bus: the single-process baseline) the
// publisher and the streams use the same node; for `redis` and `nats` two gateway
// processes share the bus, events are POSTed to node A and received on SSE streams held
// on node B. Latency is the server's publish time (`ts`, stamped on A into the payload) to
// receipt in this process, for every delivery, in an HDR histogram; the publisher runs
// open-loop at each rate. Every stream's `seq` is checked: lost, duplicate or reordered
// deliveries are counted. The gateways open no database (--db-start lazy): the embedded
// PGlite's start-up would compete for the CPU with the first measurements. Figures, not a
// pass/fail test: the machine is shared.
//
//   npm run bench:bus -- [--buses memory,redis,nats] [--rates 100,500,1000] [--seconds 5] [--streams 20] [--json]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { Auth } from '../src/core/auth.js';
import { BENCH_JWT_SECRET } from './bench-gateway-config.js';
import { cleanupBus } from './bus-cleanup.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    buses: { type: 'string', default: 'memory,redis,nats' },
    rates: { type: 'string', default: '100,500,1000' },
    seconds: { type: 'string', default: '5' },
    streams: { type: 'string', default: '20' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    'nats-url': { type: 'string', default: 'nats://127.0.0.1:4222' },
    json: { type: 'boolean', default: false },
  },
});
type BusKind = 'memory' | 'redis' | 'nats';
const BUSES = args.buses!.split(',') as BusKind[];
const RATES = args.rates!.split(',').map(Number);
const SECONDS = Number(args.seconds);
const STREAMS = Number(args.streams);
if (BUSES.some((b) => !['memory', 'redis', 'nats'].includes(b)) || RATES.some((r) => !(r > 0)) || !(SECONDS > 0) || !(STREAMS > 0)) {
  console.error('usage: bus-fanout.ts [--buses memory,redis,nats] [--rates 100,500,1000] [--seconds 5] [--streams 20] [--json]');
  process.exit(2);
}
const SECRET = BENCH_JWT_SECRET;
const agent = new Agent({ keepAlive: true, maxSockets: 32 });

interface Node {
  url: string;
  proc: ChildProcess;
  dir: string;
}

function startNode(extra: string[]): Promise<Node> {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-busbench-'));
  const proc = spawn(process.execPath, [`${root}/bin/fanout.js`, 'serve', '--port', '0', '--data-dir', dir, '--log-level', 'info', '--max-connections-per-user', '100000', '--db-start', 'lazy', ...extra], {
    cwd: root,
    env: { ...process.env, FANOUT_JWT_SECRET: SECRET },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    proc.on('exit', (code) => reject(new Error(`gateway exited (${code}) before listening`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'gateway listening' && entry.url) resolve({ url: entry.url, proc, dir });
      } catch {
        // not JSON
      }
    });
  });
}

async function stopNode(n: Node): Promise<void> {
  if (n.proc.exitCode === null) {
    const exited = new Promise((r) => n.proc.once('exit', r));
    n.proc.kill('SIGTERM');
    await exited;
  }
  rmSync(n.dir, { recursive: true, force: true });
}

function post(url: string, token: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

interface Tally {
  latency: hdr.Histogram;
  received: number;
  lost: number;
  duplicates: number;
}

/** Opens one raw SSE stream and records each progress event's latency and seq continuity. */
function openStream(url: string, token: string, tally: () => Tally): Promise<() => void> {
  return new Promise((resolve, reject) => {
    let lastSeq = -1;
    let buf = '';
    const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`stream answered ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const now = Date.now();
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const lines = block.split('\n');
          const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
          if (event === 'ready') resolve(() => req.destroy());
          if (event !== 'progress') continue;
          const line = lines.find((l) => l.startsWith('data: '));
          if (!line) continue;
          const d = JSON.parse(line.slice(6)) as { seq: number; ts: number };
          const t = tally();
          t.received++;
          t.latency.recordValue(Math.max(0, now - d.ts) * 1000); // µs
          if (lastSeq >= 0 && d.seq <= lastSeq) t.duplicates++;
          else if (lastSeq >= 0 && d.seq > lastSeq + 1) t.lost += d.seq - lastSeq - 1;
          lastSeq = Math.max(lastSeq, d.seq);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

interface Row {
  bus: BusKind;
  rate: number;
  sent: number;
  refused: number;
  expected: number;
  received: number;
  lost: number;
  duplicates: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  postP50Ms: number;
  postP99Ms: number;
}

async function measure(kind: BusKind): Promise<Row[]> {
  const prefix = `bench${Math.random().toString(36).slice(2, 8)}`;
  const busArgs = kind === 'memory' ? [] : ['--bus', kind, '--bus-prefix', prefix, '--redis-url', args['redis-url']!, '--nats-url', args['nats-url']!];
  const a = await startNode(busArgs);
  const b = kind === 'memory' ? a : await startNode(busArgs);
  const rows: Row[] = [];
  try {
    const keys = await new Auth(SECRET).projectKeys();
    const token = keys.service_role;
    const created = await post(`${a.url}/api/content`, token, { userId: 'bench', simulate: false });
    const id = created.json.contentId as string;
    let tally: Tally = { latency: hdr.build(), received: 0, lost: 0, duplicates: 0 };
    const closers = await Promise.all(Array.from({ length: STREAMS }, () => openStream(`${b.url}/api/content/progress?userId=bench`, token, () => tally)));
    for (const rate of RATES) {
      tally = { latency: hdr.build(), received: 0, lost: 0, duplicates: 0 };
      const postLatency = hdr.build();
      let sent = 0;
      let refused = 0;
      const total = Math.round(rate * SECONDS);
      const started = Date.now();
      const inflight: Promise<void>[] = [];
      // Open loop: each publish is due at started + i/rate, whether or not earlier ones answered.
      while (sent + refused < total) {
        const due = started + ((sent + refused) * 1000) / rate;
        const wait = due - Date.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        const t0 = performance.now();
        const i = sent + refused;
        inflight.push(
          post(`${a.url}/api/content/${id}/progress`, token, { progress: i % 101 }).then((r) => {
            postLatency.recordValue(Math.round((performance.now() - t0) * 1000));
            if (r.status !== 200) refused++;
          }),
        );
        sent++;
      }
      await Promise.all(inflight);
      sent -= refused;
      const expected = sent * STREAMS;
      const deadline = Date.now() + 10_000;
      while (tally.received < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const ms = (v: number) => Math.round(v / 10) / 100;
      rows.push({
        bus: kind,
        rate,
        sent,
        refused,
        expected,
        received: tally.received,
        lost: tally.lost,
        duplicates: tally.duplicates,
        p50Ms: ms(tally.latency.getValueAtPercentile(50)),
        p99Ms: ms(tally.latency.getValueAtPercentile(99)),
        maxMs: ms(tally.latency.maxValue),
        postP50Ms: ms(postLatency.getValueAtPercentile(50)),
        postP99Ms: ms(postLatency.getValueAtPercentile(99)),
      });
      if (!args.json) console.error(`  ${kind} @ ${rate}/s done`);
    }
    for (const close of closers) close();
  } finally {
    await stopNode(a);
    if (b !== a) await stopNode(b);
    await cleanupBus(kind, prefix, { redisUrl: args['redis-url']!, natsUrl: args['nats-url']! });
  }
  return rows;
}

const rows: Row[] = [];
for (const kind of BUSES) rows.push(...(await measure(kind)));
agent.destroy();
if (args.json) console.log(JSON.stringify({ streams: STREAMS, seconds: SECONDS, rows }, null, 2));
else {
  console.log(`\ncross-node publish → SSE receipt, ${STREAMS} streams on the receiving node, ${SECONDS} s per rate (memory: one node, no bus)\n`);
  console.log('| bus | rate/s | delivered | lost | dup | p50 ms | p99 ms | max ms | POST p50 ms | POST p99 ms |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.bus} | ${r.rate} | ${r.received}/${r.expected}${r.refused ? ` (${r.refused} refused)` : ''} | ${r.lost} | ${r.duplicates} | ${r.p50Ms} | ${r.p99Ms} | ${r.maxMs} | ${r.postP50Ms} | ${r.postP99Ms} |`);
  }
}
