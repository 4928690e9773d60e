// How the load-testing commands (`load`, `load agent`, `spike`, `report`) turn a failure
// into one line on stderr and an exit code from the shared table (exit-codes.ts): bad
// usage is 2, a target or set-up that failed is 4. Their errors are the CommandFailures
// every command uses (failures.ts); what differs is the unexpected error: here it is a
// set-up failure (4), since 1 means "a threshold failed" to a CI job. A stack trace is
// printed only when FANOUT_DEBUG is set: a CI log wants the reason, not the call chain.
import { EXIT, type ExitCode } from './exit-codes.js';
import { ConfigError } from '../core/config.js';
import { ServerPidMismatchError, TargetRefusedError } from '../load/target.js';
import { ThresholdSyntaxError } from '../load/thresholds.js';
import { CommandFailure } from './failures.js';

/** Bad usage: a flag, value or file the user gave is wrong (exit 2). */
export class UsageError extends CommandFailure {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}

/**
 * The target or the set-up failed (exit 4): the target cannot be reached, it refused a
 * key, a port is in use, an embedded gateway or database did not start.
 */
export class SetupError extends CommandFailure {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT.setupFailed, options);
    this.name = 'SetupError';
  }
}

const SETUP_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'ETIMEDOUT', 'EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES', 'EAI_AGAIN']);

/** The errno code of an error or of its cause (fetch wraps the socket error in `cause`). */
export function errnoOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** The exit code for an error a command could not recover from. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof CommandFailure) return err.exitCode;
  if (err instanceof ConfigError || err instanceof TargetRefusedError || err instanceof ThresholdSyntaxError || err instanceof ServerPidMismatchError) return EXIT.usage;
  // Anything else stopped the run before it could say something about the server: the
  // set-up failed (a refused connection, a port in use, a process that did not start).
  return EXIT.setupFailed;
}

/** One line: the message's first line, with the errno code when the message does not already say it. */
export function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const first = message.split('\n').find((l) => l.trim()) ?? 'unknown error';
  const code = errnoOf(err);
  return code && SETUP_CODES.has(code) && !first.includes(code) ? `${first} (${code})` : first;
}

/** Prints `fanout <command>: <reason>` (and the stack with FANOUT_DEBUG) and returns the exit code. */
export function reportCommandError(command: string, err: unknown): ExitCode {
  console.error(`fanout ${command}: ${oneLine(err)}`);
  if (process.env.FANOUT_DEBUG && err instanceof Error && err.stack) console.error(err.stack);
  return exitCodeOf(err);
}
