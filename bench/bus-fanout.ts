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
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { Auth } from '../src/core/auth.js';
import { BENCH_JWT_SECRET } from './bench-gateway-config.js';
import { cleanupBus } from './bus-cleanup.js';
import { agent, openStream, post, startGatewayProcess as startNode, stopGatewayProcess as stopNode } from './gateway-processes.js';

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
interface Tally {
  latency: hdr.Histogram;
  received: number;
  lost: number;
  duplicates: number;
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
    const counting = {
      event: (d: { ts: number }, now: number) => {
        tally.received++;
        tally.latency.recordValue(Math.max(0, now - d.ts) * 1000); // µs
      },
      lost: (n: number) => void (tally.lost += n),
      duplicate: () => void tally.duplicates++,
    };
    const closers = await Promise.all(Array.from({ length: STREAMS }, () => openStream(`${b.url}/api/content/progress?userId=bench`, token, () => counting)));
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
