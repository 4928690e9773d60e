// Clusters of gateways for the scale-out tests: several gateways sharing one bus (an
// in-process MemoryCluster, or the real Redis / NATS on the machine, or a private server a
// test can kill), each under its own random prefix so parallel runs never collide, and
// everything the prefix created removed afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GatewayConfig } from '../../src/core/config.js';
import { MemoryCluster } from '../../src/bus/memory.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { cleanupBus, DEFAULT_NATS_URL, DEFAULT_REDIS_URL } from '../../bench/bus-cleanup.js';

export type ClusterKind = 'memory' | 'redis' | 'nats';

export const REDIS_URL = DEFAULT_REDIS_URL;
export const NATS_URL = DEFAULT_NATS_URL;

export function randomPrefix(): string {
  return `t${Math.random().toString(36).slice(2, 10)}`;
}

export interface Cluster {
  kind: ClusterKind;
  prefix: string;
  nodes: TestGateway[];
  /** Starts one more node on the same bus. */
  add(overrides?: Partial<GatewayConfig>): Promise<TestGateway>;
  stop(): Promise<void>;
}

export async function startCluster(
  kind: ClusterKind,
  count: number,
  overrides: Partial<GatewayConfig> = {},
  urls: { redisUrl?: string; natsUrl?: string } = {},
): Promise<Cluster> {
  const prefix = overrides.busPrefix ?? randomPrefix();
  const memory = kind === 'memory' ? new MemoryCluster(overrides.historySize ?? 1000) : undefined;
  const base: Partial<GatewayConfig> = {
    bus: kind,
    busPrefix: prefix,
    redisUrl: urls.redisUrl ?? REDIS_URL,
    natsUrl: urls.natsUrl ?? NATS_URL,
    realtimeConnectErrorBackoffMs: 0,
    realtimeChannelErrorBackoffMs: 0,
    ...overrides,
  };
  const nodes: TestGateway[] = [];
  const add = async (more: Partial<GatewayConfig> = {}): Promise<TestGateway> => {
    const config = { ...base, ...more };
    const bus = memory?.connect(undefined, config.busNodeTimeoutMs ?? 15_000);
    const node = await startGateway(config, { sweepMs: 100, processMetrics: false, ...(bus ? { bus } : {}) });
    nodes.push(node);
    return node;
  };
  for (let i = 0; i < count; i++) await add();
  return {
    kind,
    prefix,
    nodes,
    add,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      await cleanBus(kind, prefix, urls);
    },
  };
}

/** Removes every key, stream and bucket a prefix created on the shared servers. */
export const cleanBus = cleanupBus;

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A Redis or NATS server of this test's own, on a free port, that it can kill and restart (same port, same data dir). */
export interface PrivateServer {
  url: string;
  start(): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function privateServer(kind: 'redis' | 'nats', options: { keepData?: boolean } = {}): Promise<PrivateServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `fanout-${kind}-`));
  let child: ChildProcess | undefined;
  const url = kind === 'redis' ? `redis://127.0.0.1:${port}` : `nats://127.0.0.1:${port}`;
  // keepData false: a Redis that keeps nothing on disk, so a restart after kill -9 comes back empty.
  const persistence = options.keepData === false ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', 'always'];
  const args =
    kind === 'redis'
      ? ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir]
      : ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir];
  const server: PrivateServer = {
    url,
    async start() {
      const proc = spawn(serverBinary(kind), args, { stdio: 'ignore' });
      child = proc;
      await waitForPort(port);
    },
    async kill() {
      const proc = child;
      if (!proc || proc.exitCode !== null) return;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGKILL');
      await exited;
    },
    async stop() {
      await server.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

/** The server binary: on PATH, or where Debian installs it (nats-server lives in /usr/sbin, not always on PATH). */
function serverBinary(kind: 'redis' | 'nats'): string {
  const name = kind === 'redis' ? 'redis-server' : 'nats-server';
  for (const dir of ['/usr/bin', '/usr/sbin', '/usr/local/bin']) if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  return name;
}

async function waitForPort(port: number): Promise<void> {
  const { connect: tcp } = await import('node:net');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tcp(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`server on port ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The kinds whose server runs on this machine (memory always). */
export const KINDS: ClusterKind[] = ['memory', 'redis', 'nats'];
