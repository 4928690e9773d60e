// `fanout serve`: starts the gateway and drains it on SIGTERM/SIGINT. A failure a user can
// cause (port in use, bad host, unreadable TLS file, unreachable bus or database) ends the
// process with one line and exit code 2 or 4 (serve-startup.ts, failures.ts). With
// `--workers N` the process becomes the primary of N gateway workers on one port (workers.ts).
import cluster from 'node:cluster';
import type { Command } from 'commander';
import { loadConfig, type GatewayConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Gateway } from '../server/gateway.js';
import { addGatewayOptions, configOrExit } from './options.js';
import { exitWith, explainListenError, failure, runCommand } from './failures.js';
import { EXIT } from './exit-codes.js';
import { onStopRequest, type StopReason } from './signals.js';
import { bannerLines, checkTlsFiles, followDatabaseStart, formatBanner, waitForBus } from './serve-startup.js';

export function registerServeCommand(program: Command): void {
  const cmd = program
    .command('serve')
    .description('start the gateway (embedded defaults: in-memory hub, PGlite database under --data-dir)');
  addGatewayOptions(cmd).action(async (flags: Record<string, unknown>) => {
    const config = await configOrExit('serve', () => loadConfig(flags));
    const { checkWorkers, runPrimary, workerCount } = await import('./workers.js');
    const workers = workerCount(config);
    const { createLogger } = await import('../core/log.js');
    if (cluster.isPrimary && workers > 1) {
      await configOrExit('serve', () => checkWorkers(config, workers));
      process.exit(await runPrimary(config, workers, createLogger({ level: config.logLevel }).child({ role: 'primary' })));
    }
    // A worker says which one it is in every log line.
    const logger = cluster.isWorker ? createLogger({ level: config.logLevel }).child({ worker: Number(process.env.FANOUT_WORKER_ID) }) : undefined;
    await runCommand('serve', async () => {
      // Signals are handled from the first moment: one that arrives while the gateway is
      // still starting stops it as soon as it exists, instead of killing the process.
      const lifecycle: Lifecycle = { stopping: undefined, gateway: undefined };
      stopOnSignals(config, lifecycle);
      lifecycle.gateway = await startGateway(config, logger);
      if (lifecycle.stopping) return drain(lifecycle.gateway, config, lifecycle.stopping);
      announce(lifecycle.gateway, lifecycle);
    });
  });
}

/** Shared by start-up and the signal handler: a stop cancels whatever is still starting. */
interface Lifecycle {
  /** Why the gateway is stopping, once a stop was requested. */
  stopping: StopReason | undefined;
  gateway: Gateway | undefined;
}

/** Builds the gateway and opens its sockets; every failure a user can fix becomes a CommandFailure. */
async function startGateway(config: GatewayConfig, logger: Logger | undefined): Promise<Gateway> {
  checkTlsFiles(config);
  // Loaded here, not at the top, so `fanout --help` does not load the whole gateway.
  const [{ createGateway }, { SecretError }] = await Promise.all([import('../server/gateway.js'), import('../core/auth.js')]);
  // Modules validate their own files (e.g. --alerts) while the gateway is assembled.
  const gateway = await configOrExit('serve', () =>
    createGateway(config, { logger }).catch((err: unknown) => {
      throw err instanceof SecretError ? failure(err.message, err.fix, EXIT.setupFailed, err) : err;
    }),
  );
  try {
    await gateway.listen();
    await waitForBus(gateway);
  } catch (err) {
    await gateway.close().catch(() => undefined);
    throw explainListenError(err, config) ?? err;
  }
  return gateway;
}

/** The banner in a terminal, and the database's start-up followed in the log; a database that cannot open ends the process. */
function announce(gateway: Gateway, lifecycle: Lifecycle): void {
  const terminal = process.stderr.isTTY === true;
  if (terminal) process.stderr.write(formatBanner(bannerLines(gateway)));
  const runtime = gateway.provides('databaseRuntime') ? gateway.service('databaseRuntime') : undefined;
  followDatabaseStart(gateway, runtime && (() => runtime.parts()), {
    ready: (line) => {
      if (terminal) process.stderr.write(line);
    },
    // A stop during start-up aborts the database's opening: that is the stop, not a failure.
    fail: (err) => {
      if (!lifecycle.stopping) exitWith('serve', err);
    },
  });
}

/** Drains and exits on SIGTERM/SIGINT (and, under npm, when npm goes away). */
function stopOnSignals(config: GatewayConfig, lifecycle: Lifecycle): void {
  onStopRequest((reason) => {
    lifecycle.stopping = reason;
    if (lifecycle.gateway) drain(lifecycle.gateway, config, reason);
  });
}

/** Closes the gateway (bounded by the drain timeout plus a hard deadline) and exits 0, or 1 if that fails. */
function drain(gateway: Gateway, config: GatewayConfig, reason: StopReason): void {
  gateway.log.info({ signal: reason, drainTimeoutMs: config.drainTimeoutMs }, 'draining');
  // A hard deadline, so a stuck hook can never keep a terminated process alive.
  setTimeout(() => {
    gateway.log.error('shutdown exceeded its deadline; exiting');
    process.exit(1);
  }, config.drainTimeoutMs + 5000).unref();
  gateway.close().then(
    () => process.exit(0),
    (err: unknown) => {
      gateway.log.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
}
