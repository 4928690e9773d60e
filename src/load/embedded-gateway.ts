// A Fanout gateway started as a child process on a free loopback port, for `fanout load`
// without --target and for `fanout spike`. It runs `fanout serve` exactly as a user would,
// with a throw-away data directory and a fresh JWT secret (so the load tester can mint
// the anon and service_role keys), and per-user/per-tenant rate limits raised: the run
// measures the gateway's capacity, not Supabase's plan quotas (those are in the cost
// section). Its pid lets the sampler read /proc; its /metrics gives event-loop lag.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Auth } from '../core/auth.js';
import type { Target } from './target.js';
import { onInterrupt } from './cleanup.js';

const FANOUT_BIN = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));

export interface EmbeddedGateway {
  target: Target;
  url: string;
  pid: number;
  secret: string;
  dataDir: string;
  /** Restarts the gateway process on the same port (same secret and data), e.g. after a fault. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Extra environment for the gateway (e.g. DATABASE_URL for a dedicated PostgreSQL). */
  env?: Record<string, string>;
  /** Gateway stderr goes here when set (default: discarded unless FANOUT_EMBEDDED_LOG is set). */
  logLevel?: string;
  startTimeoutMs?: number;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Limits lifted so the gateway, not a quota, is what a load run finds. Unknown variables are ignored by older gateways. */
export const CAPACITY_ENV: Record<string, string> = {
  FANOUT_MAX_CONNECTIONS: '1000000',
  FANOUT_MAX_CONNECTIONS_PER_USER: '1000000',
  FANOUT_REALTIME_MAX_JOINS_PER_SECOND: '10000000',
  FANOUT_REALTIME_MAX_EVENTS_PER_SECOND: '1000000',
  FANOUT_REALTIME_MAX_CHANNELS_PER_CLIENT: '1000',
  // The per-identity and per-socket buckets: a load test is one identity (one key, one address) many times over.
  FANOUT_MAX_CONNECTIONS_PER_ADDRESS: '1000000',
  FANOUT_REALTIME_USER_JOINS_PER_SECOND: '10000000',
  FANOUT_REALTIME_USER_JOIN_BURST: '10000000',
  FANOUT_REALTIME_SOCKET_JOINS_PER_SECOND: '10000000',
  FANOUT_REALTIME_EVENT_BURST: '10000000',
  FANOUT_REALTIME_USER_EVENTS_PER_SECOND: '10000000',
  FANOUT_REALTIME_USER_EVENT_BURST: '10000000',
};

async function waitListening(url: string, child: ChildProcess, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`embedded gateway exited with code ${child.exitCode} during start-up:\n${output()}`);
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      // Any HTTP answer means the server is listening; a 503 from /readyz would mean "not yet".
      const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      await ready.arrayBuffer();
      if (ready.status !== 503) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`embedded gateway did not start listening on ${url} within ${timeoutMs} ms:\n${output()}`);
}

export async function startEmbeddedGateway(opts: EmbeddedOptions = {}): Promise<EmbeddedGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fanout-load-'));
  const secret = randomBytes(32).toString('base64url');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const auth = new Auth(secret);
  const keys = await auth.projectKeys();
  let child: ChildProcess;
  let stderr = '';

  const launch = async (): Promise<void> => {
    stderr = '';
    child = spawn(process.execPath, [FANOUT_BIN, 'serve', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir], {
      env: { ...process.env, ...CAPACITY_ENV, FANOUT_JWT_SECRET: secret, FANOUT_LOG_LEVEL: opts.logLevel ?? 'warn', ...opts.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-8000);
      if (process.env.FANOUT_EMBEDDED_LOG) process.stderr.write(c);
    });
    await waitListening(url, child, opts.startTimeoutMs ?? 30_000, () => stderr);
  };
  await launch();

  const stopChild = async (): Promise<void> => {
    const c = child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => c.kill('SIGKILL'), 15_000);
      c.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      c.kill('SIGTERM');
    });
  };

  let unregister = (): void => undefined;
  const gw: EmbeddedGateway = {
    target: { kind: 'fanout', url, serviceKey: keys.service_role, anonKey: keys.anon, pid: child!.pid, metricsUrl: `${url}/metrics` },
    url,
    get pid() {
      return child.pid ?? 0;
    },
    secret,
    dataDir,
    async restart() {
      await stopChild();
      await launch();
      gw.target.pid = child.pid;
    },
    async stop() {
      unregister();
      await stopChild();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  const off = onInterrupt(() => gw.stop());
  unregister = () => void off();
  return gw;
}
