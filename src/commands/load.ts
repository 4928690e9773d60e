// `fanout load sse|realtime|hybrid`: one load run against a target (a Fanout gateway,
// a Supabase project, or any SSE URL), or against an embedded gateway started for the
// run. Live progress on stderr, a summary table (or --json) on stdout, and an exit code
// a CI job can act on (exit-codes.ts): 0 passed, 1 a threshold failed, 2 bad usage, 3 the
// run is invalid (the generator saturated, an agent died), 4 the target or set-up failed.
import { writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { runLoad } from '../load/coordinator.js';
import { startEmbeddedGateway, type EmbeddedGateway } from '../load/embedded-gateway.js';
import { ProgressReporter } from '../load/progress.js';
import { formatSummary } from '../load/summary.js';
import { DEFAULT_GENERATOR_LIMITS, type RunSpec } from '../load/spec.js';
import { checkTarget, createFanoutStreams, normalizeLoopback, probeTarget, type Target, type TargetKind } from '../load/target.js';
import { resolveThresholds } from '../load/thresholds.js';
import type { ConnectionPattern } from '../load/schedule.js';
import type { RunResult } from '../load/result.js';
import { openGeneratorPool } from '../load/agent-client.js';
import { parseHostPort } from '../load/agent-protocol.js';
import type { WorkerPool } from '../load/pool.js';
import { registerAgentCommand } from './agent.js';

import { EXIT, type ExitCode } from './exit-codes.js';
import { UsageError, reportCommandError } from './command-errors.js';

const positive = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number.`);
  return n;
};
const integer = (name: string) => (v: string): number => {
  const n = positive(name)(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be a whole number.`);
  return n;
};
const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Options every run takes (target, shape, thresholds, output). */
export function addRunOptions(cmd: Command): Command {
  return cmd
    .option('--target <url>', 'base URL of the system under test (a Fanout gateway, or a Supabase project with --supabase); default: start an embedded gateway for the run')
    .option('--supabase', 'the target is a Supabase project (realtime at /realtime/v1, comments inserted through PostgREST /rest/v1/project_comments)')
    .option('--anon-key <key>', 'key clients connect with (Fanout: `fanout keys`; Supabase: the anon key) [env FANOUT_ANON_KEY, SUPABASE_ANON_KEY]')
    .option('--service-key <key>', 'service_role key used to publish progress and insert comments [env FANOUT_SERVICE_KEY, SUPABASE_SERVICE_ROLE_KEY]')
    .option('--allow-remote', 'allow a non-loopback target (e.g. your own Supabase project); fault injection is never run against one')
    .option('--duration <s>', 'test duration in seconds (the seed\'s testDuration)', positive('--duration'), 60)
    .addOption(new Option('--pattern <p>', "connection pattern: burst (all at once), gradual (spread over --ramp), sustained (gradual, then connections end and are replaced)").choices(['burst', 'gradual', 'sustained']).default('gradual'))
    .option('--ramp <s>', 'seconds over which connections arrive (gradual/sustained); default min(10, duration/3)', positive('--ramp'))
    .option('--max-open-rate <n>', 'open at most n connections per second across the generator: a faster --ramp is lengthened, and the run with it (see the preflight note for what the generator can open)', positive('--max-open-rate'))
    .option('--workers <n>', 'generator processes on this machine (each holds at most 18,000 sockets); default max(2, sockets/18,000), or 0 with --agents', integer('--workers'))
    .option('--agents <host:port,...>', 'drive `fanout load agent` generators on other machines too: their workers take connections like local ones, histograms and sequence ledgers are merged, clock offsets measured and corrected; an agent that dies or lags makes the run INVALID')
    .option('--agent-token <token>', 'the shared token the agents were started with [env FANOUT_AGENT_TOKEN]')
    .option('--server-pid <pid>', 'sample this local process (CPU, RSS, open files) from /proc', integer('--server-pid'))
    .option('--metrics-url <url>', "sample the server's Prometheus endpoint (event-loop lag, heap); default <target>/metrics for Fanout")
    .option('--threshold <expr>', 'pass/fail criterion such as "sse.latency_e2e.p99<300" (repeatable; replaces the default for the same metric)', collect, [])
    .option('--no-default-thresholds', "do not apply the seed's acceptance criteria as default thresholds")
    .option('--abort-on-fail', 'stop the run as soon as a latency threshold fails on the live merged data (judged after the ramp)')
    .option('--generator-max-lag-ms <ms>', "mark the run INVALID when the generator's event-loop lag p99 in steady state exceeds this (10% of the 500 ms delivery budget)", positive('--generator-max-lag-ms'), DEFAULT_GENERATOR_LIMITS.maxLagMs)
    .option('--generator-max-connecting-lag-ms <ms>', "... or while connections open (10% of the 1 s subscribe budget; never below --generator-max-lag-ms)", positive('--generator-max-connecting-lag-ms'), DEFAULT_GENERATOR_LIMITS.maxConnectingLagMs)
    .option('--generator-max-cpu <pct>', 'mark the run INVALID when a generator process averages more CPU than this (% of one core)', positive('--generator-max-cpu'), DEFAULT_GENERATOR_LIMITS.maxCpuPct)
    .option('--json', 'print the full result as JSON on stdout instead of the summary table')
    .option('--out <file>', 'also write the full result JSON to this file')
    .option('--quiet', 'no live progress line');
}

function addSseOptions(cmd: Command, prefix = ''): Command {
  return cmd
    .option(`--${prefix}connections <n>`, 'concurrent SSE connections (the seed\'s concurrentConnections)', integer('--connections'), 100)
    .option('--streams <n>', 'distinct progress streams the connections are spread over (subscribers per stream = connections / streams); default min(connections, 20)', integer('--streams'))
    .option('--rate <msgs/s>', "messages per second published to each stream, i.e. received by each connection (the seed's messageFrequency)", positive('--rate'), 1)
    .addOption(new Option('--path <mode>', 'SSE endpoint: user (/api/content/progress?connectionId=&userId=, the seed\'s), content (/api/content/:id/progress), topic (/v1/stream?topic=)').choices(['user', 'content', 'topic']).default('user'))
    .option('--sse-url <url>', 'load any SSE endpoint instead: every connection opens this URL and nothing is published (latency only if events carry "ts")')
    .option('--no-reconnect', 'do not reconnect dropped streams (EventSource would)');
}

function addRealtimeOptions(cmd: Command): Command {
  return cmd
    .option('--projects <n>', 'projects (one channel realtime:project:<id> each)', integer('--projects'), 10)
    .option('--users-per-project <n>', 'users (WebSockets) per project', integer('--users-per-project'), 10)
    .option('--no-presence', 'do not enable or track presence')
    .option('--presence-interval <s>', 'seconds between presence updates per user (Supabase allows 5 presence calls per 30 s)', positive('--presence-interval'), 10)
    .option('--doc-rate <msgs/s>', 'document broadcasts per second per project (document updates)', positive('--doc-rate'), 1)
    .option('--comment-rate <msgs/s>', 'comment inserts per second per project, delivered as postgres_changes (comment updates)', positive('--comment-rate'), 0.5)
    .addOption(new Option('--client <kind>', 'raw: Phoenix v2 over ws, thousands per process; supabase-js: one real @supabase/supabase-js client per user, for fidelity at small scale (receive time taken in its callbacks)').choices(['raw', 'supabase-js']).default('raw'));
}

interface RunFlags {
  target?: string;
  supabase?: boolean;
  anonKey?: string;
  serviceKey?: string;
  allowRemote?: boolean;
  duration: number;
  pattern: ConnectionPattern;
  ramp?: number;
  maxOpenRate?: number;
  workers?: number;
  agents?: string;
  agentToken?: string;
  serverPid?: number;
  metricsUrl?: string;
  threshold: string[];
  defaultThresholds: boolean;
  abortOnFail?: boolean;
  generatorMaxLagMs: number;
  generatorMaxConnectingLagMs: number;
  generatorMaxCpu: number;
  json?: boolean;
  out?: string;
  quiet?: boolean;
  connections?: number;
  streams?: number;
  rate?: number;
  path?: 'user' | 'content' | 'topic';
  sseUrl?: string;
  reconnect?: boolean;
  projects?: number;
  usersPerProject?: number;
  presence?: boolean;
  presenceInterval?: number;
  docRate?: number;
  commentRate?: number;
  client?: 'raw' | 'supabase-js';
}

export type LoadKind = 'sse' | 'realtime' | 'hybrid';

/** Builds the target from flags and environment, or starts an embedded gateway when no target is given. */
export async function resolveTarget(flags: RunFlags, purpose: { faults?: boolean } = {}): Promise<{ target: Target; embedded?: EmbeddedGateway }> {
  if (flags.sseUrl) {
    checkTarget(flags.sseUrl, { allowRemote: !!flags.allowRemote, faults: purpose.faults });
    return { target: { kind: 'sse-url', url: normalizeLoopback(flags.sseUrl), pid: flags.serverPid, metricsUrl: flags.metricsUrl } };
  }
  if (!flags.target) {
    const embedded = await startEmbeddedGateway();
    return { target: embedded.target, embedded };
  }
  checkTarget(flags.target, { allowRemote: !!flags.allowRemote, faults: purpose.faults });
  const kind: TargetKind = flags.supabase ? 'supabase' : 'fanout';
  const url = normalizeLoopback(flags.target);
  return {
    target: {
      kind,
      url,
      anonKey: flags.anonKey ?? process.env.FANOUT_ANON_KEY ?? process.env.SUPABASE_ANON_KEY,
      serviceKey: flags.serviceKey ?? process.env.FANOUT_SERVICE_KEY ?? process.env.SUPABASE_SERVICE_ROLE_KEY,
      pid: flags.serverPid,
      metricsUrl: flags.metricsUrl ?? (kind === 'fanout' ? `${url}/metrics` : undefined),
    },
  };
}

export function buildSpec(kind: LoadKind, flags: RunFlags, target: Target): RunSpec {
  const durationMs = flags.duration * 1000;
  const rampMs = flags.pattern === 'burst' ? 0 : (flags.ramp ?? Math.min(10, flags.duration / 3)) * 1000;
  if (rampMs >= durationMs && flags.pattern !== 'burst') throw new UsageError(`--ramp (${rampMs / 1000} s) must be shorter than --duration (${flags.duration} s)`);
  const spec: RunSpec = {
    name: `load-${kind}`,
    target,
    durationMs,
    rampMs,
    pattern: flags.pattern,
    workers: flags.workers,
    thresholds: resolveThresholds(flags.threshold, flags.defaultThresholds),
    generator: { maxLagMs: flags.generatorMaxLagMs, maxConnectingLagMs: flags.generatorMaxConnectingLagMs, maxCpuPct: flags.generatorMaxCpu },
    abortOnFail: !!flags.abortOnFail,
    maxOpenRate: flags.maxOpenRate,
  };
  if (kind !== 'realtime') {
    const connections = flags.connections ?? 100;
    if (connections < 1) throw new UsageError('--connections must be at least 1');
    spec.sse = {
      connections,
      streams: Math.max(1, Math.min(connections, flags.streams ?? Math.min(connections, 20))),
      ratePerStream: target.kind === 'sse-url' ? 0 : (flags.rate ?? 1),
      path: flags.path ?? 'user',
      reconnect: flags.reconnect !== false,
    };
  }
  if (kind !== 'sse') {
    if (target.kind === 'sse-url') throw new UsageError('--sse-url only applies to `fanout load sse`');
    if (!target.anonKey) throw new UsageError('realtime load needs the project key: --anon-key (or FANOUT_ANON_KEY / SUPABASE_ANON_KEY)');
    spec.realtime = {
      projects: flags.projects ?? 10,
      usersPerProject: flags.usersPerProject ?? 10,
      presence: flags.presence !== false,
      presenceIntervalMs: (flags.presenceInterval ?? 10) * 1000,
      docRate: flags.docRate ?? 1,
      commentRate: flags.commentRate ?? 0.5,
      reconnect: flags.reconnect !== false,
      client: flags.client ?? 'raw',
    };
  }
  if (spec.sse && spec.sse.ratePerStream > 0 && target.kind === 'fanout' && !target.serviceKey) throw new UsageError('publishing progress needs the service_role key: --service-key (or FANOUT_SERVICE_KEY), or --rate 0');
  return spec;
}

/** Exit code of a finished run. */
export function exitCodeFor(r: Pick<RunResult, 'valid' | 'passed'>): ExitCode {
  if (!r.valid) return EXIT.invalidRun;
  return r.passed ? EXIT.ok : EXIT.thresholdFailed;
}

/** `--agents a:1,b:2` → the addresses, each checked (exit 2 naming a malformed one). */
export function parseAgentList(value: string | undefined): string[] {
  if (!value) return [];
  const list = value.split(',').map((a) => a.trim()).filter(Boolean);
  for (const a of list) {
    try {
      parseHostPort(a, '--agents entry');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  if (new Set(list).size !== list.length) throw new UsageError(`--agents names an agent twice: ${value}`);
  return list;
}

async function runCommand(kind: LoadKind, flags: RunFlags): Promise<number> {
  let resolved: Awaited<ReturnType<typeof resolveTarget>> | undefined;
  let pool: WorkerPool | undefined;
  try {
    // Agents first: a missing or refusing agent fails the set-up before anything is started.
    const agents = parseAgentList(flags.agents);
    if (agents.length) pool = await openGeneratorPool({ localWorkers: flags.workers ?? 0, agents, token: flags.agentToken ?? process.env.FANOUT_AGENT_TOKEN });
    resolved = await resolveTarget(flags);
    const spec = buildSpec(kind, flags, resolved.target);
    if (!resolved.embedded) await probeTarget(resolved.target);
    const progress = flags.quiet ? undefined : new ProgressReporter();
    if (resolved.embedded && !flags.quiet) process.stderr.write(`started an embedded gateway at ${resolved.embedded.url} (pid ${resolved.embedded.pid})\n`);
    const result = await runLoad(spec, {
      pool,
      onStatus: progress ? (s) => progress.update(s) : undefined,
      prepareSse: resolved.target.kind === 'fanout' && spec.sse ? async (n) => ({ streams: await createFanoutStreams(resolved!.target, n, `load${Date.now().toString(36)}`) }) : undefined,
    });
    progress?.done();
    if (flags.out) writeFileSync(flags.out, JSON.stringify(result, null, 2));
    process.stdout.write(flags.json ? JSON.stringify(result, null, 2) + '\n' : formatSummary(result) + '\n');
    return exitCodeFor(result);
  } finally {
    await pool?.close();
    await resolved?.embedded?.stop();
  }
}

const HELP_FOOTER = `
What is measured: connection establishment time, time to first event, delivery latency from the
server's publish stamp (SSE "ts") and from the publisher's intended send time (open-loop schedule:
a late publish is measured from when it should have happened, so there is no coordinated omission),
fan-out completion, loss / duplicates / reordering from per-stream sequence numbers, errors and
close codes by kind, reconnects, stability (connected time / expected time), bandwidth per
connection, and the server's CPU, RSS, memory per connection (a fitted slope), event-loop lag and
open files. Latencies are HDR histograms merged across the generator's worker processes. If the
generator itself saturates (event-loop lag or CPU over the limits) the run is marked INVALID.

Default thresholds are the seed's acceptance criteria (SSE delivery p99 < 500 ms judged from the
intended publish time, sse.latency_e2e — the server-stamped sse.latency is a diagnostic and is
judged only when the tester does not publish; connect p99 < 2 s,
stability > 99%, presence p99 < 1 s, subscribe (connect + join) p99 < 1 s, reliability >= 99.9%, no loss, memory
< 10 MB/connection). The seed's growth benchmarks are reported and judged on request:
--threshold "server.cpu_per_100_connections_pct<5" --threshold "bandwidth_per_connection_kbps<1".
Metric names: see --json "metrics".

Exit codes: 0 passed, 1 a threshold failed, 2 bad usage, 3 invalid run (the generator
saturated, an agent died or lagged), 4 the target or set-up failed (unreachable target,
refused key, port in use). Only loopback targets are accepted unless --allow-remote is given.`;

export function registerLoadCommand(program: Command): void {
  const load = program.command('load').description('load-test SSE progress streams, Supabase Realtime collaboration, or both at once');
  const kinds: [LoadKind, string][] = [
    ['sse', 'SSE progress streams: N connections receiving progress events published at --rate per stream'],
    ['realtime', 'Supabase Realtime collaboration: projects × users with presence, document broadcasts and comment postgres_changes'],
    ['hybrid', 'both at once, in one run (the seed\'s hybrid architecture)'],
  ];
  registerAgentCommand(load);
  for (const [kind, description] of kinds) {
    let cmd = addRunOptions(load.command(kind).description(description));
    if (kind !== 'realtime') cmd = addSseOptions(cmd);
    if (kind !== 'sse') cmd = addRealtimeOptions(cmd);
    cmd.addHelpText('after', HELP_FOOTER);
    cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage));
    cmd.action(async (flags: RunFlags) => {
      let code: number;
      try {
        code = await runCommand(kind, flags);
      } catch (err) {
        code = reportCommandError(`load ${kind}`, err);
      }
      process.exitCode = code;
    });
  }
}
