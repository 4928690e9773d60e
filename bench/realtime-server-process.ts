// A server under test in its own process, driven over IPC by bench/realtime-channels.ts:
//   gateway — the Fanout gateway (Realtime limits raised so the bench measures capacity, not policy)
//   bare    — a bare `ws` server that only holds sockets: the memory baseline per socket
// Forked with --expose-gc so memory samples are taken after a full collection; each sample
// also says how much of the RSS is V8's young generation.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { WebSocketServer } from 'ws';
import { benchGatewayConfig } from './bench-gateway-config.js';
import { createLogger } from '../src/core/log.js';
import { createGateway } from '../src/server/gateway.js';

export type ServerCommand = { cmd: 'memory' } | { cmd: 'stats' } | { cmd: 'stop' };
export type ServerReply =
  | { type: 'ready'; url: string; key: string }
  | { type: 'memory'; rss: number; heapUsed: number; external: number; youngGeneration: number }
  | { type: 'stats'; cpuMs: number; wallMs: number; loopP99Ms: number; loopMaxMs: number; connections: number; sweepMs: number };

const mode = process.argv[2];
const send = (reply: ServerReply): void => void process.send!(reply);
const dataDir = mkdtempSync(join(tmpdir(), 'fanout-bench-'));
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let statsFrom = { cpu: process.cpuUsage(), wall: Date.now() };

let stop: () => Promise<void>;
let connections: () => number;
/** Times one pass of the shared sweep over every connection (0 for the bare server). */
let timeSweep: () => number = () => 0;

if (mode === 'gateway') {
  const config = benchGatewayConfig(dataDir, { realtimeMaxJoinsPerSecond: 10_000_000, drainTimeoutMs: 1000 });
  const gateway = await createGateway(config, { logger: createLogger({ level: 'warn' }), processMetrics: false });
  await gateway.listen();
  const keys = await gateway.auth.projectKeys();
  stop = () => gateway.close();
  connections = () => gateway.connections.count('ws');
  timeSweep = () => {
    const started = performance.now();
    gateway.connections.tick(Date.now());
    return performance.now() - started;
  };
  send({ type: 'ready', url: gateway.url.replace('http', 'ws') + '/realtime/v1/websocket', key: keys.anon });
} else if (mode === 'bare') {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (ws) => ws.on('message', () => undefined));
  const { port } = wss.address() as { port: number };
  stop = () =>
    new Promise<void>((resolve) => {
      for (const ws of wss.clients) ws.terminate();
      wss.close(() => resolve());
    });
  connections = () => wss.clients.size;
  send({ type: 'ready', url: `ws://127.0.0.1:${port}`, key: '' });
} else {
  console.error('usage: realtime-server-process.ts gateway|bare (forked with an IPC channel)');
  process.exit(2);
}

const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (msg: ServerCommand) => {
  void (async () => {
    if (msg.cmd === 'memory') {
      gc?.();
      await new Promise((r) => setTimeout(r, 100));
      gc?.();
      const m = process.memoryUsage();
      // V8's young generation: touched once under load and kept, a step in RSS rather than a slope.
      const youngGeneration = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0;
      send({ type: 'memory', rss: m.rss, heapUsed: m.heapUsed, external: m.external, youngGeneration });
    } else if (msg.cmd === 'stats') {
      const cpu = process.cpuUsage(statsFrom.cpu);
      const now = Date.now();
      send({ type: 'stats', cpuMs: (cpu.user + cpu.system) / 1000, wallMs: now - statsFrom.wall, loopP99Ms: loop.percentile(99) / 1e6, loopMaxMs: loop.max / 1e6, connections: connections(), sweepMs: timeSweep() });
      statsFrom = { cpu: process.cpuUsage(), wall: now };
      loop.reset();
    } else if (msg.cmd === 'stop') {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    }
  })();
});
// Never outlive the orchestrator.
process.on('disconnect', () => {
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
});
