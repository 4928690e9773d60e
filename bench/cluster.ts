// `npm run bench:cluster`: does adding gateway nodes add capacity? 1, 2 and 4 gateway
// processes on the Redis bus (and on NATS), the topics spread so that each node serves
// 1/N of them (its streams are only for its own topics), a fixed total publish rate
// POSTed round-robin to the nodes. Per node it reports the messages its bus client handed
// over (`fanout_bus_messages_received_total`) against the messages of its own topics
// (interest routing: about 1×; before it, every node took every message), its CPU per
// delivered message, and publish → receipt latency, from each message's intended send
// time (open loop, no coordinated omission). The same scenario runs on older code (a git
// ref, checked out beside this one) in the same run: one process on the in-process bus,
// and the clusters, so the single-process figures and the CPU cost per delivery can be
// compared on the same machine at the same time. Figures, not a pass/fail test.
//
//   npm run bench:cluster -- [--buses redis,nats] [--nodes 1,2,4] [--topics 24] [--streams 20]
//                            [--rate 240] [--seconds 15] [--baseline <git ref>|none] [--json]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { Auth } from '../src/core/auth.js';
import { BENCH_JWT_SECRET } from './bench-gateway-config.js';
import { cleanupBus } from './bus-cleanup.js';
import { agent, cpuSeconds, openStream, post, ROOT, scrapeCounter, startGatewayProcess, stopGatewayProcess, type GatewayProcess } from './gateway-processes.js';

/** The last commit before the one publish path and interest routing: every node took every message. */
const DEFAULT_BASELINE = '3bc241f';

const { values: args } = parseArgs({
  options: {
    buses: { type: 'string', default: 'redis,nats' },
    nodes: { type: 'string', default: '1,2,4' },
    topics: { type: 'string', default: '24' },
    streams: { type: 'string', default: '20' },
    rate: { type: 'string', default: '240' },
    seconds: { type: 'string', default: '15' },
    baseline: { type: 'string', default: DEFAULT_BASELINE },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    'nats-url': { type: 'string', default: 'nats://127.0.0.1:4222' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
const USAGE = 'usage: npm run bench:cluster -- [--buses redis,nats] [--nodes 1,2,4] [--topics 24] [--streams 20] [--rate 240] [--seconds 15] [--baseline <git ref>|none] [--json]';
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
type Bus = 'memory' | 'redis' | 'nats';
const BUSES = args.buses!.split(',') as Bus[];
const NODES = args.nodes!.split(',').map(Number);
const TOPICS = Number(args.topics);
const STREAMS = Number(args.streams);
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
if (BUSES.some((b) => b !== 'redis' && b !== 'nats') || NODES.some((n) => !(n >= 1)) || !(TOPICS >= 1) || !(STREAMS >= 1) || !(RATE > 0) || !(SECONDS > 0)) {
  console.error(USAGE);
  process.exit(2);
}
const progress = (line: string) => !args.json && console.error(line);

type Code = 'this' | 'baseline';

interface NodeRow {
  node: number;
  ownMessages: number;
  busReceived: number | null;
  /** CPU time of the node per message it delivered to a stream, µs. */
  cpuUsPerDelivery: number;
}

interface RunRow {
  code: Code;
  bus: Bus;
  nodes: number;
  published: number;
  refused: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  p50Ms: number;
  p99Ms: number;
  perNode: NodeRow[];
}

/** Checks out `ref` beside this checkout (sharing its node_modules), for the baseline runs. */
function checkoutBaseline(ref: string): { root: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-baseline-'));
  execFileSync('git', ['-C', ROOT, 'worktree', 'add', '--detach', dir, ref], { stdio: 'ignore' });
  if (!existsSync(join(dir, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return {
    root: dir,
    remove: () => {
      execFileSync('git', ['-C', ROOT, 'worktree', 'remove', '--force', dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function run(code: Code, root: string, bus: Bus, count: number): Promise<RunRow> {
  const prefix = `cb${Math.random().toString(36).slice(2, 8)}`;
  const busArgs = bus === 'memory' ? [] : ['--bus', bus, '--bus-prefix', prefix, '--redis-url', args['redis-url']!, '--nats-url', args['nats-url']!];
  const nodes: GatewayProcess[] = [];
  const closers: (() => void)[] = [];
  try {
    for (let i = 0; i < count; i++) nodes.push(await startGatewayProcess(busArgs, root));
    const token = (await new Auth(BENCH_JWT_SECRET).projectKeys()).service_role;
    // Topic t is served by node t % count: its streams are held there, and only there.
    const items: string[] = [];
    for (let t = 0; t < TOPICS; t++) {
      const created = await post(`${nodes[0]!.url}/api/content`, token, { userId: 'bench-owner', simulate: false });
      items.push(created.json.contentId as string);
    }
    const latency = hdr.build();
    let delivered = 0;
    let lost = 0;
    let duplicates = 0;
    const tally = {
      event: (d: Record<string, unknown>, now: number) => {
        delivered++;
        latency.recordValue(Math.max(0, now - Number(d.due)) * 1000); // µs
      },
      lost: (n: number) => void (lost += n),
      duplicate: () => void duplicates++,
    };
    for (let t = 0; t < TOPICS; t++) {
      const node = nodes[t % count]!;
      for (let s = 0; s < STREAMS; s++) closers.push(await openStream(`${node.url}/api/content/${items[t]}/progress`, token, () => tally));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const received = (n: GatewayProcess) => scrapeCounter(n.url, 'fanout_bus_messages_received_total');
    const before = await Promise.all(nodes.map(async (n) => ({ cpu: cpuSeconds(n.proc.pid!), received: await received(n) })));
    const own = nodes.map(() => 0);
    const total = Math.round(RATE * SECONDS);
    const started = Date.now();
    const inflight: Promise<void>[] = [];
    let refused = 0;
    // Open loop: message k is due at started + k/RATE, whether or not earlier ones answered.
    for (let k = 0; k < total; k++) {
      const due = started + (k * 1000) / RATE;
      const wait = due - Date.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const t = k % TOPICS;
      inflight.push(
        post(`${nodes[k % count]!.url}/api/content/${items[t]}/progress`, token, { progress: k % 101, due }).then((r) => {
          if (r.status === 200) own[t % count]!++;
          else refused++;
        }),
      );
    }
    await Promise.all(inflight);
    const published = total - refused;
    const expected = published * STREAMS;
    const deadline = Date.now() + 15_000;
    while (delivered < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const after = await Promise.all(nodes.map(async (n) => ({ cpu: cpuSeconds(n.proc.pid!), received: await received(n) })));
    const ms = (v: number) => Math.round(v / 10) / 100;
    return {
      code,
      bus,
      nodes: count,
      published,
      refused,
      expected,
      delivered,
      lost,
      duplicates,
      p50Ms: ms(latency.getValueAtPercentile(50)),
      p99Ms: ms(latency.getValueAtPercentile(99)),
      perNode: nodes.map((_, i) => ({
        node: i + 1,
        ownMessages: own[i]!,
        // The baseline code has no such counter (its nodes took every message of every topic).
        busReceived: code === 'baseline' ? null : after[i]!.received - before[i]!.received,
        cpuUsPerDelivery: Math.round(((after[i]!.cpu - before[i]!.cpu) * 1e7) / Math.max(1, own[i]! * STREAMS)) / 10,
      })),
    };
  } finally {
    for (const close of closers) close();
    for (const n of nodes) await stopGatewayProcess(n);
    if (bus !== 'memory') await cleanupBus(bus, prefix, { redisUrl: args['redis-url']!, natsUrl: args['nats-url']! });
  }
}

const baseline = args.baseline === 'none' ? undefined : checkoutBaseline(args.baseline!);
const rows: RunRow[] = [];
try {
  const plan: [Code, Bus, number][] = [];
  // The single process, old code and new side by side, then each cluster size on each bus.
  if (baseline) plan.push(['baseline', 'memory', 1]);
  plan.push(['this', 'memory', 1]);
  for (const bus of BUSES) {
    for (const n of NODES) {
      if (baseline) plan.push(['baseline', bus, n]);
      plan.push(['this', bus, n]);
    }
  }
  for (const [code, bus, n] of plan) {
    progress(`  ${code} code, ${bus}, ${n} node${n > 1 ? 's' : ''} …`);
    rows.push(await run(code, code === 'baseline' ? baseline!.root : ROOT, bus, n));
  }
} finally {
  agent.destroy();
  baseline?.remove();
}

if (args.json) {
  console.log(JSON.stringify({ topics: TOPICS, streamsPerTopic: STREAMS, rate: RATE, seconds: SECONDS, baseline: args.baseline, rows }, null, 2));
} else {
  console.log(`\n${TOPICS} topics × ${STREAMS} SSE streams, ${RATE} publishes/s in all for ${SECONDS} s, topics spread evenly over the nodes; baseline = ${args.baseline}\n`);
  console.log('| code | bus | nodes | delivered | lost | dup | p50 ms | p99 ms | per node: own msgs / bus msgs received (×) / CPU µs per delivery |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const perNode = r.perNode
      .map((n) => `${n.ownMessages} / ${n.busReceived === null ? '—' : `${n.busReceived} (${(n.busReceived / Math.max(1, n.ownMessages)).toFixed(2)}×)`} / ${n.cpuUsPerDelivery}`)
      .join('; ');
    console.log(`| ${r.code} | ${r.bus} | ${r.nodes} | ${r.delivered}/${r.expected}${r.refused ? ` (${r.refused} refused)` : ''} | ${r.lost} | ${r.duplicates} | ${r.p50Ms} | ${r.p99Ms} | ${perNode} |`);
  }
}
