// `fanout serve --workers N|auto`: N gateway processes on one host, sharing one port
// through Node's `cluster` module (the primary accepts connections and hands them to the
// workers in turn), joined by the configured Redis or NATS bus exactly as gateways on
// several hosts are. The primary runs no gateway: it starts the workers, restarts one that
// dies (its clients reconnect to the others and resume from the bus's history), and on
// SIGTERM/SIGINT has every worker drain, then exits.
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { GatewayConfig } from '../core/config.js';
import { ConfigError } from '../core/config.js';
import { loadSecret } from '../core/auth.js';
import type { Logger } from '../core/log.js';
import { onStopRequest } from './signals.js';

/** The number of gateway processes `--workers` asks for. */
export function workerCount(config: GatewayConfig): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/** Why this configuration cannot run in several processes, or undefined when it can. */
export function workersProblem(config: GatewayConfig, count: number): string | undefined {
  if (count <= 1) return undefined;
  if (config.bus === 'memory') {
    return `--workers ${count} needs a bus the workers share: start Redis (redis-server) and add --bus redis, or start NATS with JetStream (nats-server -js) and add --bus nats; the in-process bus of --bus memory cannot join several processes`;
  }
  if (!config.databaseUrl) {
    return `--workers ${count}: the embedded database (PGlite in --data-dir) can be opened by one process only; give the workers one PostgreSQL database with --database-url (run \`fanout migrate\` on it first), or run a single worker`;
  }
  return undefined;
}

/** Throws a ConfigError (exit code 2, one line) when the configuration cannot run `count` workers. */
export function checkWorkers(config: GatewayConfig, count: number): void {
  const problem = workersProblem(config, count);
  if (problem) throw new ConfigError([problem]);
}

/** How long a worker that keeps dying waits before its next start, doubling to a cap. */
function restartDelayMs(failures: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, failures - 1));
}

/** A worker that lived this long is healthy again: its next death restarts it at once. */
const STABLE_MS = 10_000;

interface Slot {
  id: number;
  worker: Worker | undefined;
  startedAt: number;
  failures: number;
  listening: boolean;
}

/**
 * The primary: starts `count` workers and supervises them until SIGTERM/SIGINT. Resolves
 * with the exit code once every worker has stopped.
 */
export function runPrimary(config: GatewayConfig, count: number, log: Logger): Promise<number> {
  // Every worker must verify the same keys: resolve (and, in development, create) the secret once, here.
  const secret = loadSecret(config.jwtSecret, config.dataDir);
  const env = { FANOUT_JWT_SECRET: secret.secret };
  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({ id: i + 1, worker: undefined, startedAt: 0, failures: 0, listening: false }));
  let stopping = false;
  let everListening = false;
  let announced = false;
  let resolveExit: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));

  const start = (slot: Slot): void => {
    slot.startedAt = Date.now();
    slot.listening = false;
    const worker = cluster.fork({ ...env, FANOUT_WORKER_ID: String(slot.id) });
    slot.worker = worker;
    worker.on('listening', (address) => {
      slot.listening = true;
      everListening = true;
      log.info({ worker: slot.id, workerPid: worker.process.pid, port: address.port }, 'worker listening');
      if (!announced && slots.every((s) => s.listening)) {
        announced = true;
        const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
        log.info({ url: `http://${host}:${address.port}`, workers: count, pids: slots.map((s) => s.worker?.process.pid) }, 'gateway listening');
      }
    });
    worker.on('exit', (code, signal) => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      if (stopping) {
        if (slots.every((s) => !s.worker)) resolveExit(0);
        return;
      }
      if (!slot.listening && !everListening) {
        // It never came up, and no worker ever did: the configuration or the host is wrong. Stop, do not loop.
        log.error({ worker: slot.id, code, signal }, 'a worker failed to start; stopping the others');
        stopAll('worker failed to start', code && code > 0 ? code : 4);
        return;
      }
      slot.failures = Date.now() - slot.startedAt > STABLE_MS ? 1 : slot.failures + 1;
      const delay = slot.failures > 1 ? restartDelayMs(slot.failures) : 0;
      log.warn({ worker: slot.id, workerPid: worker.process.pid, code, signal, restartInMs: delay }, 'worker died; its clients reconnect to the others; restarting it');
      setTimeout(() => !stopping && start(slot), delay).unref();
    });
  };

  let exitCode = 0;
  const stopAll = (reason: string, code = 0): void => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    log.info({ reason, workers: slots.filter((s) => s.worker).length, drainTimeoutMs: config.drainTimeoutMs }, 'draining every worker');
    const alive = slots.filter((s) => s.worker);
    if (alive.length === 0) resolveExit(code);
    for (const s of alive) s.worker!.process.kill('SIGTERM');
    // A hard deadline, so a stuck worker can never keep the host's gateway half alive.
    setTimeout(() => {
      for (const s of slots) s.worker?.process.kill('SIGKILL');
      log.error('workers did not stop within the drain deadline; killed');
      resolveExit(1);
    }, config.drainTimeoutMs + 10_000).unref();
  };

  onStopRequest((reason) => stopAll(reason));
  for (const slot of slots) start(slot);
  return exited.then((code) => (code === 0 ? exitCode : code));
}
