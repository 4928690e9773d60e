// What a user sees when a command cannot do its job because of something they can fix: one
// line on stderr, `fanout <command>: <what is wrong>: <what to do>`, and an exit code from
// exit-codes.ts (2 for a bad flag, variable or file; 4 for a set-up that failed). Errors
// nobody anticipated keep their stack trace, since that is what a bug report needs.
import type { Command } from 'commander';
import { ConfigError, type GatewayConfig } from '../core/config.js';
import { EXIT, type ExitCode } from './exit-codes.js';

/** A failure a user can fix, with the exit code that classifies it. */
export class CommandFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CommandFailure';
  }
}

/** A failure whose cause and fix are both known: `cause: fix` on one line. */
export function failure(cause: string, fix: string, exitCode: ExitCode, err?: unknown): CommandFailure {
  return new CommandFailure(`${cause}: ${fix}`, exitCode, { cause: err });
}

type ErrnoError = NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };

function isErrno(err: unknown): err is ErrnoError {
  return err instanceof Error && typeof (err as ErrnoError).code === 'string';
}

/** Which option chose `port`, for the fix: the TLS port or the plain one. */
function portOption(config: GatewayConfig, port: number | undefined): string {
  return config.tlsCert && port === config.tlsPort && port !== config.port ? '--tls-port or FANOUT_TLS_PORT' : '--port or PORT';
}

/**
 * Turns an error from opening the gateway's listening sockets into a CommandFailure that
 * names the address, why it failed and what to change; undefined for anything else.
 */
export function explainListenError(err: unknown, config: GatewayConfig): CommandFailure | undefined {
  if (!isErrno(err)) return undefined;
  const port = err.port ?? config.port;
  const where = `${err.address ?? config.host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return failure(
        `${where} is already in use (another fanout, or another server)`,
        `stop that process (\`ss -ltnp 'sport = :${port}'\` shows it) or choose another port with ${portOption(config, port)}`,
        EXIT.setupFailed,
        err,
      );
    case 'EACCES':
      return failure(
        `no permission to listen on ${where} (ports below 1024 need root or CAP_NET_BIND_SERVICE)`,
        `choose a port above 1023 with ${portOption(config, port)}, and put a reverse proxy in front (deploy/nginx/fanout.conf)`,
        EXIT.setupFailed,
        err,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return failure(
        `cannot resolve the host "${err.hostname ?? config.host}" given by --host or FANOUT_HOST`,
        'use an address (127.0.0.1 for this machine only, 0.0.0.0 for every interface, :: for IPv6) or a name this machine resolves',
        EXIT.usage,
        err,
      );
    case 'EADDRNOTAVAIL':
      return failure(
        `the address ${err.address ?? config.host} (--host or FANOUT_HOST) is not one of this machine's`,
        'use 127.0.0.1, 0.0.0.0 (every interface) or an address `ip addr` lists',
        EXIT.usage,
        err,
      );
    default:
      return undefined;
  }
}

/**
 * Runs a command's body; a CommandFailure or ConfigError ends the process with its one
 * line and exit code. Anything else is a bug: it is reported with its stack, exit code 1.
 */
export async function runCommand(command: string, body: () => Promise<void> | void): Promise<void> {
  try {
    await body();
  } catch (err) {
    exitWith(command, err);
  }
}

/** Prints the one line for `err` and exits with its code (see runCommand). */
export function exitWith(command: string, err: unknown): never {
  if (err instanceof CommandFailure) {
    console.error(`fanout ${command}: ${err.message}`);
    process.exit(err.exitCode);
  }
  if (err instanceof ConfigError) {
    // One problem fits the one line; several are listed under it so all can be fixed at once.
    console.error(`fanout ${command}: ${err.problems.length === 1 ? `invalid configuration: ${err.problems[0]}` : err.message}`);
    process.exit(EXIT.usage);
  }
  console.error(`fanout ${command}: unexpected error (a bug; please report it with what follows): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
}

/** Makes commander's usage errors (an unknown option or command, a missing argument) exit with 2, not its default 1. */
export function exitTwoOnUsageErrors(cmd: Command): Command {
  return cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage));
}
