// A server under measurement, in its own process, controlled over IPC by the SSE bench
// and the leak test: either the Fanout gateway or a bare `node:http` SSE server (the
// floor the gateway is compared with). Start with `--expose-gc` so memory is read after
// a full collection.
//
//   fork('bin/run-ts.js', ['bench/sse-server-process.ts', 'gateway' | 'bare'], { execArgv: ['--expose-gc'] })
//
// Messages in:  {cmd: 'memory'} {cmd: 'stats'} {cmd: 'publish', seq} {cmd: 'stop'}
// Messages out: {type: 'ready', url, path, token} and one reply per command.
import { createServer, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { benchGatewayConfig } from './bench-gateway-config.js';
import { createLogger } from '../src/core/log.js';
import { createGateway } from '../src/server/gateway.js';

export type ServerCommand = { cmd: 'memory' } | { cmd: 'stats' } | { cmd: 'publish'; seq: number } | { cmd: 'stop' };

export interface MemoryReport {
  type: 'memory';
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  connections: number;
}

export type ServerReply =
  | { type: 'ready'; url: string; path: string; token: string }
  | MemoryReport
  | { type: 'stats'; connections: number; subscribers: number }
  /**
   * `syncMs`: the publish call (the synchronous fan-out loop); `flushMs`: until the socket
   * writes Node defers to the next tick (one writev per stream) have been issued too. On a
   * cluster node both end when the bus has taken the event; delivery follows when it hands
   * the event back, so only the receivers' latency covers the fan-out there.
   */
  | { type: 'published'; seq: number; ts: number; syncMs: number; flushMs: number }
  | { type: 'stopped' };

interface ServerUnderTest {
  url: string;
  path: string;
  token: string;
  connections(): number;
  subscribers(): number;
  /** Publishes event `seq`; the publish time stamped into it (after the bus took it, in a cluster). */
  publish(seq: number): number | Promise<number>;
  stop(): Promise<void>;
}

const BENCH_CONTENT = 'bench';

async function startGatewayServer(): Promise<ServerUnderTest> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fanout-bench-'));
  const config = benchGatewayConfig(dataDir, {}, process.env);
  const gateway = await createGateway(config, { logger: createLogger({ level: 'warn', pretty: false, destination: process.stderr }) });
  await gateway.listen();
  const { progress } = gateway.service('content');
  progress.create('bench-user', BENCH_CONTENT);
  const token = await gateway.auth.userToken('bench-user', 24 * 3600);
  const topic = `content:${BENCH_CONTENT}`;
  return {
    url: gateway.url,
    path: `/api/content/${BENCH_CONTENT}/progress?from=now`,
    token,
    connections: () => gateway.connections.count('sse'),
    subscribers: () => gateway.hub.subscriberCount(topic),
    // Through the bus in every mode: the in-process engine alone, Redis or NATS in a cluster (FANOUT_BUS).
    publish: (seq) => progress.publish(BENCH_CONTENT, 'progress', { progress: seq % 101, stage: 'bench' }).then((m) => m.ts),
    async stop() {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The floor: what a minimal hand-written node:http SSE server holds per connection. */
async function startBareServer(): Promise<ServerUnderTest> {
  const clients = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform' });
    res.write('retry: 2000\n\n');
    clients.add(res);
    req.on('close', () => clients.delete(res));
  });
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    path: '/events',
    token: 'none',
    connections: () => clients.size,
    subscribers: () => clients.size,
    publish(seq) {
      const ts = Date.now();
      const frame = Buffer.from(`id: ${seq}\nevent: progress\ndata: {"progress":${seq % 101},"stage":"bench","seq":${seq},"ts":${ts}}\n\n`);
      for (const res of clients) res.write(frame);
      return ts;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function memory(connections: number): MemoryReport {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { type: 'memory', rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, connections };
}

const send = (reply: ServerReply): void => void process.send?.(reply);

const mode = process.argv[2];
if (mode !== 'gateway' && mode !== 'bare') {
  console.error('usage: sse-server-process.ts gateway|bare (forked with an IPC channel)');
  process.exit(2);
}
const server = mode === 'gateway' ? await startGatewayServer() : await startBareServer();
process.on('message', (msg: ServerCommand) => {
  switch (msg.cmd) {
    case 'memory':
      return send(memory(server.connections()));
    case 'stats':
      return send({ type: 'stats', connections: server.connections(), subscribers: server.subscribers() });
    case 'publish': {
      const started = performance.now();
      const published = (ts: number): void => {
        // Read synchronously: Node issues the deferred socket writes on the next tick.
        const syncMs = performance.now() - started;
        setImmediate(() => send({ type: 'published', seq: msg.seq, ts, syncMs, flushMs: performance.now() - started }));
      };
      const ts = server.publish(msg.seq);
      if (typeof ts === 'number') published(ts);
      else void ts.then(published);
      return;
    }
    case 'stop':
      void server.stop().then(() => {
        send({ type: 'stopped' });
        process.exit(0);
      });
  }
});
// The parent going away must not leave a server behind.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', url: server.url, path: server.path, token: server.token });
