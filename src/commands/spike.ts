// `fanout spike`: the seed's whole matrix, the failure scenario, the degradation ramps
// and (with --soak) the 10-minute stability run, written to reports/<timestamp>/ as
// report.json, report.md and a self-contained report.html with charts.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { ProgressReporter } from '../load/progress.js';
import { resolveThresholds } from '../load/thresholds.js';
import { DEFAULT_GENERATOR_LIMITS } from '../load/spec.js';
import { checkTarget, normalizeLoopback, probeTarget } from '../load/target.js';
import { DEFAULT_COST_ASSUMPTIONS } from '../spike/cost.js';
import { runSpike } from '../spike/runner.js';
import { reportDir, writeReport } from '../spike/report-render.js';
import type { Profile } from '../spike/matrix.js';
import type { SpikeReport } from '../spike/model.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { parseAgentList } from './load.js';
import { UsageError, reportCommandError } from './command-errors.js';

interface SpikeFlags {
  quick?: boolean;
  profile?: Profile;
  soak?: string;
  target?: string;
  anonKey?: string;
  serviceKey?: string;
  serverPid?: string;
  allowRemote?: boolean;
  faultStopCmd?: string;
  faultStartCmd?: string;
  outDir: string;
  only?: string;
  threshold: string[];
  defaultThresholds: boolean;
  costUsers?: string;
  activeHours?: string;
  supabaseBaseUsd?: string;
  vmUsd?: string;
  busUsd?: string;
  costProgressRate?: string;
  costRealtimeRate?: string;
  quiet?: boolean;
  json?: boolean;
  agents?: string;
  agentToken?: string;
  workers?: string;
  repeats?: string;
}

function number(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${flag} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
}

export function summarizeSpike(report: SpikeReport, dir: string): string {
  const lines = [`spike report written to ${dir}/ (report.md, report.html, report.json)`, ''];
  lines.push('Limits on this machine (≥: a lower bound, the gateway did not degrade within what the generator could show):');
  for (const d of [report.degradation.sse, report.degradation.realtime]) if (d) lines.push(`  ${d.transport === 'sse' ? 'SSE' : 'Realtime'}: ${d.finding}`);
  lines.push('', 'Architecture decision:');
  for (const d of [...report.decision.primary, ...report.decision.scaling.slice(0, 2), ...report.decision.fallbacks.slice(1, 2)]) lines.push(`  - ${d.statement}`);
  lines.push('', 'PerformanceBenchmarks:');
  for (const [group, items] of Object.entries(report.benchmarks)) {
    for (const [name, b] of Object.entries(items as Record<string, { value: number | null; unit: string; target: string; pass: boolean | null }>)) {
      lines.push(`  ${b.pass === null ? '·' : b.pass ? '✓' : '✗'} ${group}.${name}: ${b.value === null ? 'not measured' : `${b.value} ${b.unit}`} (target ${b.target})`);
    }
  }
  return lines.join('\n');
}

/**
 * The spike's exit code: 3 when a run the benchmarks and the decision rest on (the seed
 * matrix, hybrid, failure) was INVALID or could not be measured — its conclusions would
 * rest on the generator's figures; 1 when a benchmark failed, named; otherwise 0. An
 * INVALID ramp step is not a failure of the spike: it only leaves that limit a lower bound,
 * which the report says.
 */
export function spikeOutcome(report: SpikeReport): { code: ExitCode; reason: string } {
  // Ramp steps and soak only bound a limit; a repeat only sharpens the noise estimate.
  const essential = (id: string): boolean => !/^(ramp-|soak-)/.test(id) && !/#\d+$/.test(id);
  const invalid = [...report.invalidScenarios.filter(essential), ...report.errors.map((e) => e.scenario).filter(essential)];
  if (invalid.length) return { code: EXIT.invalidRun, reason: `INVALID: ${invalid.join(', ')} could not be measured with this generator (see the report's notes); the conclusions that rest on them are not evidence` };
  const failed: string[] = [];
  for (const [group, items] of Object.entries(report.benchmarks)) {
    for (const [name, b] of Object.entries(items as Record<string, { pass: boolean | null; value: number | null; unit: string; target: string }>)) {
      if (b.pass === false) failed.push(`${group}.${name} ${b.value} ${b.unit} (target ${b.target})`);
    }
  }
  if (failed.length) return { code: EXIT.thresholdFailed, reason: `benchmark failed: ${failed.join('; ')}` };
  return { code: EXIT.ok, reason: 'every benchmark passed or was not measured' };
}

export function registerSpikeCommand(program: Command): void {
  const cmd = program
    .command('spike')
    .description("run the seed's spike (SSE 10–200, Realtime 5×10/10×10/20×5, presence 100, high-frequency comments, hybrid, a database failure, degradation ramps) and write the architecture report")
    .option('--quick', 'the whole matrix in about 3 minutes (short runs, small ramps, baselines run twice)')
    .addOption(new Option('--profile <name>', 'run sizes: default (~20–25 min on 2 cores), quick, ci (smallest, for tests)').choices(['default', 'quick', 'ci']))
    .option('--soak <s>', "add the seed's stability run: SSE 200 + Realtime 10×10 for this many seconds (600 = the seed's 10 minutes)")
    .option('--target <url>', 'a running gateway on loopback instead of the embedded one (needs --anon-key and --service-key)')
    .option('--anon-key <key>', 'anon key of --target [env FANOUT_ANON_KEY]')
    .option('--service-key <key>', 'service_role key of --target [env FANOUT_SERVICE_KEY]')
    .option('--server-pid <pid>', 'pid of --target, to sample its CPU and memory from /proc')
    .option('--allow-remote', 'allow a non-loopback --target (no fault injection is ever run against it)')
    .option('--fault-stop-cmd <sh>', "shell command that stops --target's database (for the failure scenario)")
    .option('--fault-start-cmd <sh>', "shell command that starts --target's database again")
    .option('--agents <host:port,...>', 'generate load from `fanout load agent` processes on other machines (the gateway then has this machine to itself; limits that stay lower bounds here can be measured)')
    .option('--agent-token <token>', 'the agents\' shared token [env FANOUT_AGENT_TOKEN]')
    .option('--workers <n>', 'generator processes on this machine (default: enough for the largest step; 0 with --agents)')
    .option('--repeats <n>', 'runs of each baseline the comparison rules use (sse-100, rt-10x10, rt-20x5, rt-presence-100), for their run-to-run spread (default: 3, quick and ci 2)')
    .option('--out-dir <dir>', 'where reports/<timestamp>/ goes', 'reports')
    .option('--only <regex>', 'run only scenarios whose id matches (e.g. "^sse-|ramp-sse")')
    .option('--threshold <expr>', 'override a seed criterion, e.g. "sse.latency.p99<300" (repeatable)', (v: string, p: string[] = []) => [...p, v], [])
    .option('--no-default-thresholds', "judge runs only by --threshold, not the seed's criteria")
    .option('--cost-users <n>', 'concurrent users for the monthly cost projection', String(DEFAULT_COST_ASSUMPTIONS.users))
    .option('--active-hours <h>', 'hours per month a user is connected', String(DEFAULT_COST_ASSUMPTIONS.activeHoursPerMonth))
    .option('--supabase-base-usd <usd>', 'Supabase plan base fee per month (assumption)', String(DEFAULT_COST_ASSUMPTIONS.supabaseBaseUsd))
    .option('--vm-usd <usd>', 'price per month of one gateway VM like this machine (assumption)', String(DEFAULT_COST_ASSUMPTIONS.vmUsd))
    .option('--bus-usd <usd>', 'price per month of a managed Redis/NATS bus (assumption)', String(DEFAULT_COST_ASSUMPTIONS.busUsd))
    .option('--cost-progress-rate <per-s>', 'progress events per user per second for the cost projection (default: the rate the SSE runs used)')
    .option('--cost-realtime-rate <per-s>', 'Realtime messages received per user per second for the cost projection (default: measured in the Realtime 10 × 10 run)')
    .option('--json', 'print report.json to stdout as well')
    .option('--quiet', 'no live progress');
  cmd.addHelpText(
    'after',
    `
Each scenario is a load run (see \`fanout load --help\` for what is measured). The report fills the
seed's ScalabilityLimits and PerformanceBenchmarks with measured values and pass/fail, derives the
architecture decision by stated rules, and projects monthly cost on Supabase's pricing beside
self-hosting Fanout. \`fanout report <report.json>\` renders report.md and report.html again.
Exit codes: 0 every benchmark passed or was not measured; 1 a benchmark failed (named on
stderr); 2 bad usage; 3 a run of the seed matrix was INVALID (an INVALID ramp step only
leaves that limit a lower bound); 4 the target or set-up failed.`,
  );
  cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage));
  cmd.action(async (flags: SpikeFlags) => {
    try {
      const profile: Profile = flags.profile ?? (flags.quick ? 'quick' : 'default');
      const soakS = number('--soak', flags.soak);
      let target;
      if (flags.target) {
        checkTarget(flags.target, { allowRemote: !!flags.allowRemote, faults: !!flags.faultStopCmd });
        const url = normalizeLoopback(flags.target);
        const anonKey = flags.anonKey ?? process.env.FANOUT_ANON_KEY;
        const serviceKey = flags.serviceKey ?? process.env.FANOUT_SERVICE_KEY;
        if (!anonKey || !serviceKey) throw new UsageError('--target needs --anon-key and --service-key (see `fanout keys`)');
        target = { kind: 'fanout' as const, url, anonKey, serviceKey, pid: number('--server-pid', flags.serverPid), metricsUrl: `${url}/metrics` };
        await probeTarget(target);
      }
      if (!!flags.faultStopCmd !== !!flags.faultStartCmd) throw new UsageError('--fault-stop-cmd and --fault-start-cmd go together');
      const agents = parseAgentList(flags.agents);
      const workers = number('--workers', flags.workers);
      const repeats = number('--repeats', flags.repeats);
      if (repeats !== undefined && (!Number.isInteger(repeats) || repeats < 1)) throw new UsageError('--repeats must be a whole number of at least 1');
      if (workers !== undefined && !Number.isInteger(workers)) throw new UsageError('--workers must be a whole number');
      if (!agents.length && workers === 0) throw new UsageError('--workers 0 needs --agents: somebody has to generate the load');
      const progress = flags.quiet ? undefined : new ProgressReporter();
      const report = await runSpike({
        profile,
        agents,
        agentToken: flags.agentToken ?? process.env.FANOUT_AGENT_TOKEN,
        localWorkers: workers,
        repeats,
        soakS,
        target,
        faultCommands: flags.faultStopCmd ? { stop: flags.faultStopCmd, start: flags.faultStartCmd! } : undefined,
        thresholds: resolveThresholds(flags.threshold, flags.defaultThresholds),
        generator: DEFAULT_GENERATOR_LIMITS,
        only: flags.only ? new RegExp(flags.only) : undefined,
        cost: {
          users: number('--cost-users', flags.costUsers),
          activeHoursPerMonth: number('--active-hours', flags.activeHours),
          supabaseBaseUsd: number('--supabase-base-usd', flags.supabaseBaseUsd),
          vmUsd: number('--vm-usd', flags.vmUsd),
          busUsd: number('--bus-usd', flags.busUsd),
          progressPerUserPerSec: number('--cost-progress-rate', flags.costProgressRate),
          realtimeReceivedPerUserPerSec: number('--cost-realtime-rate', flags.costRealtimeRate),
        },
        onStatus: progress ? (s) => progress.update(s) : undefined,
        log: (line) => {
          progress?.done();
          if (!flags.quiet) process.stderr.write(`spike: ${line}\n`);
        },
      });
      progress?.done();
      const dir = reportDir(resolve(flags.outDir));
      writeReport(dir, report);
      if (flags.json) process.stdout.write(JSON.stringify(report, null, 1) + '\n');
      else process.stdout.write(summarizeSpike(report, dir) + '\n');
      const outcome = spikeOutcome(report);
      if (outcome.code !== EXIT.ok) process.stderr.write(`fanout spike: ${outcome.reason}\n`);
      process.exitCode = outcome.code;
    } catch (err) {
      process.exitCode = reportCommandError('spike', err);
    }
  });
}
