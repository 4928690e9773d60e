// `fanout serve`: starts the gateway and drains it on SIGTERM/SIGINT; with `--workers N`
// the process becomes the primary of N gateway workers on one port (commands/workers.ts).
import cluster from 'node:cluster';
import type { Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/log.js';
import { createGateway } from '../server/gateway.js';
import { addGatewayOptions, configOrExit } from './options.js';
import { checkWorkers, runPrimary, workerCount } from './workers.js';

export function registerServeCommand(program: Command): void {
  const cmd = program
    .command('serve')
    .description('start the gateway (embedded defaults: in-memory hub, PGlite database under --data-dir)');
  addGatewayOptions(cmd).action(async (flags: Record<string, unknown>) => {
    const config = await configOrExit('serve', () => loadConfig(flags));
    const workers = workerCount(config);
    if (cluster.isPrimary && workers > 1) {
      await configOrExit('serve', () => checkWorkers(config, workers));
      process.exit(await runPrimary(config, workers, createLogger({ level: config.logLevel }).child({ role: 'primary' })));
    }
    // A worker says which one it is in every log line.
    const logger = cluster.isWorker ? createLogger({ level: config.logLevel }).child({ worker: Number(process.env.FANOUT_WORKER_ID) }) : undefined;
    // Modules validate their own files (e.g. --alerts) while the gateway is assembled.
    const gateway = await configOrExit('serve', () => createGateway(config, { logger }));
    await gateway.listen();
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      gateway.log.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, 'draining');
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
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
