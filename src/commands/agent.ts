// `fanout load agent --listen host:port`: a remote load generator. It waits for a
// coordinator (`fanout load … --agents` or `fanout spike --agents`) that proves it holds the
// shared token, runs worker processes for it, and relays; Ctrl-C (SIGINT/SIGTERM) stops it.
import { cpus } from 'node:os';
import type { Command } from 'commander';
import { startAgent } from '../load/agent.js';
import { parseHostPort } from '../load/agent-protocol.js';
import { EXIT } from './exit-codes.js';
import { UsageError, reportCommandError } from './command-errors.js';

interface AgentFlags {
  listen: string;
  token?: string;
  workers?: string;
  allowRemote?: boolean;
  quiet?: boolean;
}

/** A shared secret shorter than this is guessable; the agent refuses to start with one. */
const MIN_TOKEN_LENGTH = 16;

export function registerAgentCommand(load: Command): void {
  const cmd = load
    .command('agent')
    .description('run a load generator for a coordinator on another machine (`fanout load … --agents host:port`, `fanout spike --agents …`)')
    .requiredOption('--listen <host:port>', 'address to accept the coordinator on, e.g. 0.0.0.0:7100 (port 0: any free port, printed at start)')
    .option('--token <token>', `shared secret the coordinator must prove it holds (at least ${MIN_TOKEN_LENGTH} characters; e.g. \`openssl rand -hex 24\`) [env FANOUT_AGENT_TOKEN]`)
    .option('--workers <n>', 'worker processes per session (each holds up to 18,000 sockets); default: CPUs − 1, at least 1')
    .option('--allow-remote', 'carry out plans against non-loopback targets (by default an agent, like every load run, only loads 127.0.0.0/8 and ::1)')
    .option('--quiet', 'do not log sessions to stderr');
  cmd.addHelpText(
    'after',
    `
The coordinator plans the run, publishes, merges every agent's HDR histograms and sequence
ledgers with its own, and judges the thresholds; an agent only holds connections. Each
session measures the agent's clock offset (best of 8 round trips) and every stamp the
agent's workers take is corrected by it. Authentication: both sides prove they hold the
token with an HMAC over the other's fresh nonce; the token never crosses the network.
One coordinator at a time; its workers end when it disconnects.

Exit codes: 0 stopped by a signal, 2 bad usage (no token, bad --listen), 4 set-up failed (port in use).`,
  );
  cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage));
  cmd.action(async (flags: AgentFlags) => {
    try {
      let listen: { host: string; port: number };
      try {
        listen = parseHostPort(flags.listen, '--listen', { anyPort: true });
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const token = flags.token ?? process.env.FANOUT_AGENT_TOKEN;
      if (!token) throw new UsageError('an agent needs a shared token: --token or FANOUT_AGENT_TOKEN');
      if (token.length < MIN_TOKEN_LENGTH) throw new UsageError(`the agent token must be at least ${MIN_TOKEN_LENGTH} characters`);
      const workers = flags.workers === undefined ? Math.max(1, cpus().length - 1) : Number(flags.workers);
      if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError(`--workers must be a whole number from 1 to 64, got ${JSON.stringify(flags.workers)}`);
      const log = (line: string): void => {
        if (!flags.quiet) process.stderr.write(`fanout load agent: ${line}\n`);
      };
      const agent = await startAgent({ host: listen.host, port: listen.port, token, workers, allowRemote: !!flags.allowRemote, log });
      // Always printed (even with --quiet): a script that asked for port 0 needs the real one.
      process.stderr.write(`fanout load agent: listening on ${agent.address} with ${workers} worker process(es) per session\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      log('stopping');
      await agent.close();
      process.exitCode = EXIT.ok;
    } catch (err) {
      process.exitCode = reportCommandError('load agent', err);
    }
  });
}
