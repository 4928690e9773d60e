// The report as a sequence of blocks (headings, paragraphs, lists, tables, charts),
// built once from report.json and rendered to Markdown and to HTML by report-render.ts,
// so both files always say the same thing.
import { num } from '../load/summary.js';
import { formatThreshold } from '../load/thresholds.js';
import { sseUserLatency, type RunResult } from '../load/result.js';
import { allCharts, type Chart } from './report-charts.js';
import type { Benchmark, DecisionItem, Figure, SpikeReport } from './model.js';
import { INTERFERENCE_FACTOR, INTERFERENCE_SLACK_MS } from './decision.js';
import { PRESENCE_HEADROOM_MS, RECOMMENDED_SHARE } from './limits.js';

export type Block =
  | { kind: 'h'; level: 1 | 2 | 3; text: string }
  | { kind: 'p'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; headers: string[]; rows: string[][] }
  | { kind: 'chart'; chart: Chart }
  | { kind: 'decision'; items: DecisionItem[] };

/** A figure with its strength: "≥ N" for a lower bound, the bracket for a measured degradation point. */
export const fig = (f: Figure): string => {
  if (f.value === null) return 'not measured';
  if (f.strength === 'lower-bound') return `≥ ${num(f.value, 2)} ${f.unit}`;
  if (f.bracket) return `${num(f.value, 2)} ${f.unit} (passed at ${num(f.bracket[0], 0)}, failed at ${num(f.bracket[1], 0)})`;
  return `${num(f.value, 2)} ${f.unit}`;
};
const strengthOf = (f: Figure): string => (f.value === null ? 'not measured' : f.strength === 'lower-bound' ? 'lower bound' : 'measured');
const verdictOf = (r: RunResult): string => (!r.valid ? 'INVALID' : r.passed ? 'PASS' : 'FAIL');
const passText = (b: Benchmark): string => (b.pass === null ? 'n/a' : b.pass ? 'PASS' : 'FAIL');

function scenarioRow(s: SpikeReport['scenarios'][number]): string[] {
  const r = s.result;
  const sse = r.groups.sse;
  const rt = r.groups.realtime;
  const rel = [sse?.deliveryTotal.reliabilityPct, rt?.deliveryTotal.reliabilityPct].filter((v): v is number => typeof v === 'number');
  const stab = [sse?.stabilityPct, rt?.stabilityPct].filter((v): v is number => typeof v === 'number');
  const errors = Object.values(sse?.errors ?? {}).reduce((a, b) => a + b, 0) + Object.values(rt?.errors ?? {}).reduce((a, b) => a + b, 0);
  return [
    s.id,
    s.repeatOf ? `${s.title}` : s.title,
    verdictOf(r),
    num(s.load, 0),
    num(sse?.connect.p99, 1),
    num(sseUserLatency(sse)?.p99, 1),
    num(rt?.subscribe?.p99 ?? rt?.join?.p99, 1),
    num(rt?.latency.presence?.p99, 1),
    num(rt?.latency.broadcast?.p99, 1),
    num(rt?.latency.comments?.p99, 1),
    rel.length ? num(Math.min(...rel), 3) : '–',
    stab.length ? num(Math.min(...stab), 3) : '–',
    num(r.server.steadyCpuPct, 1),
    num(r.server.rssPeakMb, 0),
    num(errors, 0),
  ];
}

export function buildDocument(report: SpikeReport): Block[] {
  const b: Block[] = [];
  const runs = report.scenarios;
  const passed = runs.filter((s) => s.result.valid && s.result.passed).length;
  const failed = runs.filter((s) => s.result.valid && !s.result.passed).length;
  b.push({ kind: 'h', level: 1, text: 'Spike 003: real-time scalability — measured report' });
  b.push({
    kind: 'p',
    text: `Generated ${report.generatedAt} by \`fanout spike\` (${report.mode}) in ${num(report.wallClockS, 0)} s against ${report.target.embedded ? 'an embedded Fanout gateway' : report.target.kind} at ${report.target.url}; database: ${report.target.database}. Machine: ${report.machine.cpus} × ${report.machine.cpuModel}, ${report.machine.memoryGb} GB, Node ${report.machine.node}, load average at the end ${report.machine.loadAverage.join(' / ')}.`,
  });
  b.push({ kind: 'p', text: `${runs.length} runs: ${passed} met every criterion, ${failed} failed at least one, ${report.invalidScenarios.length} invalid (generator saturated).` });

  b.push({ kind: 'h', level: 2, text: 'Architecture decision' });
  b.push({ kind: 'p', text: 'Each conclusion below is produced by a stated rule from the measured figures; the rule and the figures it used are listed under it.' });
  b.push({ kind: 'h', level: 3, text: '1. Primary real-time strategy' });
  b.push({ kind: 'decision', items: report.decision.primary });
  b.push({ kind: 'h', level: 3, text: '2. Scaling strategy' });
  b.push({ kind: 'decision', items: report.decision.scaling });
  b.push({ kind: 'h', level: 3, text: '3. Fallback mechanisms' });
  b.push({ kind: 'decision', items: report.decision.fallbacks });

  const l = report.limits;
  b.push({ kind: 'h', level: 2, text: 'ScalabilityLimits (by strength of evidence)' });
  b.push({ kind: 'p', text: 'Strength: "measured" — read from valid runs, or a degradation bracketed between a passing and a failing valid step; "lower bound" (≥) — the true value is at least this (the ramp ended without degrading, the next step was INVALID, or larger was not tried); nothing is sized or priced from a lower bound as if it were measured.' });
  const limitRow = (name: string, f: Figure): string[] => [name, fig(f), strengthOf(f), f.basis];
  b.push({
    kind: 'table',
    headers: ['field', 'value', 'strength', 'basis'],
    rows: [
      limitRow('sse.maxConcurrentConnections', l.sse.maxConcurrentConnections),
      limitRow('sse.recommendedLimit', l.sse.recommendedLimit),
      limitRow('sse.performanceDegradationPoint', l.sse.performanceDegradationPoint),
      limitRow('supabaseRealtime.maxChannels', l.supabaseRealtime.maxChannels),
      limitRow('supabaseRealtime.maxUsersPerChannel', l.supabaseRealtime.maxUsersPerChannel),
      limitRow('supabaseRealtime.recommendedChannelSize', l.supabaseRealtime.recommendedChannelSize),
      limitRow('supabaseRealtime.performanceDegradationPoint (added)', l.supabaseRealtime.performanceDegradationPoint),
      limitRow('supabaseRealtime.recommendedLimit (added)', l.supabaseRealtime.recommendedLimit),
      limitRow('hybrid.maxTotalConnections', l.hybrid.maxTotalConnections),
      ...Object.entries(l.hybrid.resourceUsageProfile).map(([k, f]) => limitRow(`hybrid.resourceUsageProfile.${k}`, f)),
      ['hybrid.scalingStrategy', l.hybrid.scalingStrategy, '', 'decision rules S1–S5 below'],
    ],
  });

  const pb = report.benchmarks;
  b.push({ kind: 'h', level: 2, text: 'PerformanceBenchmarks (measured against the seed’s targets)' });
  const benchRows: [string, Benchmark][] = [
    ['sse.connectionEstablishmentTime', pb.sse.connectionEstablishmentTime],
    ['sse.messageDeliveryLatency', pb.sse.messageDeliveryLatency],
    ['sse.connectionStability', pb.sse.connectionStability],
    ['supabaseRealtime.presenceUpdateLatency', pb.supabaseRealtime.presenceUpdateLatency],
    ['supabaseRealtime.messageDeliveryReliability', pb.supabaseRealtime.messageDeliveryReliability],
    ['supabaseRealtime.channelSubscriptionTime', pb.supabaseRealtime.channelSubscriptionTime],
    ['resourceUsage.memoryPerConnection', pb.resourceUsage.memoryPerConnection],
    ['resourceUsage.cpuUsageIncrease', pb.resourceUsage.cpuUsageIncrease],
    ['resourceUsage.networkBandwidth', pb.resourceUsage.networkBandwidth],
  ];
  b.push({ kind: 'table', headers: ['benchmark', 'measured', 'target', 'result', 'basis'], rows: benchRows.map(([k, v]) => [k, v.value === null ? 'not measured' : `${num(v.value, 3)} ${v.unit}`, v.target, passText(v), v.basis]) });

  b.push({ kind: 'h', level: 2, text: 'Run-to-run noise' });
  if (report.noise.length) {
    b.push({ kind: 'p', text: 'The baselines the comparison rules (P3, S4, F2) hold other runs against were repeated; a difference counts only when it exceeds both the rule\'s budget and the spread (max − min) of these runs. With one run the spread is unknown and the rule says it cannot tell.' });
    b.push({ kind: 'table', headers: ['scenario', 'figure', 'runs', 'median', 'spread'], rows: report.noise.map((x) => [x.scenario, x.figure, x.values.map((v) => num(v, 2)).join(', '), num(x.median, 2), x.spread === null ? 'unknown (one run)' : num(x.spread, 2)]) });
  } else b.push({ kind: 'p', text: 'No baseline was repeated: every comparison rule says it cannot tell.' });

  b.push({ kind: 'h', level: 2, text: 'Charts' });
  for (const chart of allCharts(report)) b.push({ kind: 'chart', chart });

  b.push({ kind: 'h', level: 2, text: 'Scenario matrix' });
  b.push({ kind: 'p', text: 'Latencies in ms (p99); reliability = unique messages received / (received + lost) per subscriber stream; stability = connected time / expected time; server CPU is the steady-state mean in % of one core.' });
  b.push({
    kind: 'table',
    headers: ['id', 'scenario', 'result', 'load', 'SSE connect p99', 'SSE delivery p99', 'subscribe p99', 'presence p99', 'broadcast p99', 'comments p99', 'reliability %', 'stability %', 'server CPU %', 'server RSS MB', 'errors'],
    rows: runs.map(scenarioRow),
  });
  const failing = runs.filter((s) => !s.result.valid || !s.result.passed);
  if (failing.length) {
    b.push({ kind: 'h', level: 3, text: 'Why runs failed' });
    b.push({
      kind: 'list',
      items: failing.map((s) => {
        const r = s.result;
        if (!r.valid) return `${s.id}: INVALID — ${r.generator.reasons.join('; ')}`;
        const f = r.thresholds.filter((t) => t.status === 'fail' || (t.status === 'no-data' && !t.isDefault));
        return `${s.id}: ${f.map((t) => `${formatThreshold(t)} (measured ${t.actual === null ? 'no data' : num(t.actual, 3)})`).join('; ')}`;
      }),
    });
  }
  if (report.errors?.length) {
    b.push({ kind: 'h', level: 3, text: 'Runs that could not be measured' });
    b.push({ kind: 'list', items: report.errors.map((e) => `${e.scenario}: ${e.message}`) });
  }
  const errored = runs.filter((s) => Object.keys(s.result.groups.sse?.errors ?? {}).length + Object.keys(s.result.groups.realtime?.errors ?? {}).length + Object.values(s.result.publish).reduce((a, p) => a + p.failed, 0) > 0);
  if (errored.length) {
    b.push({ kind: 'h', level: 3, text: 'Errors and close codes by kind' });
    b.push({
      kind: 'list',
      items: errored.map((s) => {
        const parts: string[] = [];
        for (const g of [s.result.groups.sse, s.result.groups.realtime]) {
          if (!g) continue;
          const e = Object.entries(g.errors).map(([k, v]) => `${k} ×${v}`);
          const c = Object.entries(g.closeCodes).map(([k, v]) => `${k} ×${v}`);
          if (e.length) parts.push(`${g.group} errors: ${e.join(', ')}`);
          if (c.length) parts.push(`${g.group} closes: ${c.join(', ')}`);
        }
        for (const [name, p] of Object.entries(s.result.publish)) if (p.failed) parts.push(`${name} publishes failed: ${Object.entries(p.errors).map(([k, v]) => `${k} ×${v}`).join(', ')}`);
        return `${s.id}: ${parts.join('; ')}`;
      }),
    });
  }

  b.push({ kind: 'h', level: 2, text: 'One subsystem failing' });
  if ('skipped' in report.fault) b.push({ kind: 'p', text: `Not run: ${report.fault.skipped}.` });
  else {
    const f = report.fault;
    b.push({ kind: 'p', text: `In ${f.scenarioId} the ${f.failedSubsystem} was failed mid-run (${f.method}) while SSE and Realtime were both under load. The SSE side is compared with its solo run ${f.soloScenarioId} (same connections and rate); a figure is "unaffected" when it stays within the interference budget (p99 ≤ max(${INTERFERENCE_FACTOR}× solo, solo + ${INTERFERENCE_SLACK_MS} ms), and a latency counts as degraded only beyond the solo runs' spread; stability > 99%; no more loss or drops than solo). Verdict: SSE ${f.rows.some((r) => r.verdict === 'degraded') ? 'was affected' : f.rows.some((r) => r.verdict === 'cannot tell') ? 'cannot be told apart from run-to-run noise' : 'was unaffected'}.${f.valid ? '' : ' CAUTION: the fault run or its solo run was INVALID (the generator could not keep up), so this comparison is shown but not used as evidence.'}` });
    b.push({ kind: 'table', headers: ['metric', `solo (${f.soloScenarioId}, median of its runs)`, 'during the fault', 'verdict', 'why'], rows: f.rows.map((r) => [r.metric, num(r.solo, 3), num(r.duringFault, 3), r.verdict, r.why ?? '']) });
    b.push({
      kind: 'list',
      items: [
        `comment inserts accepted ${f.failedSide.commentsPublished}, failed ${f.failedSide.commentsFailed}`,
        `comment changes delivered after the database came back: ${f.failedSide.deliveredAfterRecovery === null ? 'not observed' : f.failedSide.deliveredAfterRecovery ? 'yes' : 'no'}`,
        `errors on the failing side: ${Object.entries(f.failedSide.errorsDuringFault).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'}`,
        ...f.failedSide.notes,
      ],
    });
  }

  b.push({ kind: 'h', level: 2, text: 'Degradation ramps' });
  for (const d of [report.degradation.sse, report.degradation.realtime]) {
    if (!d) continue;
    b.push({ kind: 'h', level: 3, text: `${d.transport === 'sse' ? 'SSE' : 'Realtime'}: ${d.finding} (${d.strength === 'measured' ? 'measured' : d.strength === 'lower-bound' ? 'a lower bound' : 'not measured'})` });
    b.push({ kind: 'p', text: `Criteria: ${d.criteria.join(', ')}. Search: geometric growth, then bisection between the last passing and first failing load (steps reserved for it); stopped by ${d.stoppedBy}. Every step opened connections at ${num(d.openRate, 0)}/s and held its load ${num(d.holdMs / 1000, 1)} s. A step is INVALID when the generator could not vouch for it, or when it failed while the machine was saturated and the gateway was not (contention).` });
    if (d.generator) {
      const g = d.generator;
      b.push({ kind: 'p', text: `Generator in the last valid step: ${g.workers} worker process(es) on ${g.hosts} host(s), ${num(g.cpuMsPerConnect, 2)} ms CPU per connection opened, ${num(g.cpuUsPerMessage, 0)} µs per message received (${num(g.messagesPerSecPerConnection, 2)} messages/s per connection).` });
    }
    b.push({ kind: 'table', headers: ['load', 'run', 'result', 'p99 ms', d.transport === 'sse' ? 'connect p99 ms' : 'subscribe p99 ms', 'failed criteria / why INVALID'], rows: [...d.steps].sort((x, y) => x.load - y.load).map((s) => [num(s.load, 0), s.scenarioId, s.verdict.toUpperCase(), s.verdict === 'invalid' ? '(not the server’s)' : num(s.p99Ms, 1), s.verdict === 'invalid' ? '–' : num(s.connectP99Ms, 1), s.failures.join('; ') || '–']) });
  }

  const c = report.cost;
  b.push({ kind: 'h', level: 2, text: `Monthly cost at ${num(c.users, 0)} concurrent users` });
  b.push({ kind: 'table', headers: ['Supabase Realtime', 'quantity', 'USD / month'], rows: [...c.supabase.lines.map((x) => [x.item, x.quantity, num(x.monthlyUsd, 2)]), ['total', '', num(c.supabase.monthlyUsd, 2)]] });
  const selfTotal = c.selfHosted.sizing === 'at-most' ? `≤ ${num(c.selfHosted.monthlyUsd, 2)} (upper bound)` : c.selfHosted.sizing === 'unknown' ? 'not computed' : num(c.selfHosted.monthlyUsd, 2);
  b.push({ kind: 'table', headers: ['Self-hosted Fanout', 'quantity', 'USD / month'], rows: [...c.selfHosted.lines.map((x) => [x.item, x.quantity, num(x.monthlyUsd, 2)]), ['total', '', selfTotal]] });
  b.push({ kind: 'p', text: 'Assumptions:' });
  b.push({ kind: 'list', items: c.assumptions });

  b.push({ kind: 'h', level: 2, text: 'How the numbers were measured' });
  b.push({
    kind: 'list',
    items: [
      'Latency is intended send time to receive time at socket read: for SSE the publisher’s intended time `lt` (the server’s own stamp `ts` is kept as a diagnostic: a stalled gateway stamps late events late, so it hides the stall); for Realtime broadcasts and presence the intended send time stamped by an open-loop schedule; for comments the intended time in the inserted row (and `commit_timestamp` separately). A late publish still carries its intended time, so there is no coordinated omission, and the seed’s latency criteria are judged on these figures.',
      'Every latency is an HDR histogram (microseconds, 3 significant digits) per generator process, merged bucket by bucket across processes — never averaged. Negative samples (clock skew) are counted and recorded as 0.',
      'Loss, duplicates and reordering come from per-stream sequence numbers, per subscriber; the publishers report their last sequence number so tail losses count, and failed publishes are excluded.',
      'Stability is connected time over the time each connection was expected to be open, including connect time and reconnect gaps.',
      `Memory per connection is the least-squares slope of server RSS against open connections over every sample of a run, reported with r². Recommended limits are ${RECOMMENDED_SHARE * 100}% of the highest passing ramp load; the recommended channel size keeps presence p99 under ${PRESENCE_HEADROOM_MS} ms.`,
      'The generator records its own event-loop lag (timer drift, HDR) and CPU per process, and its cost per connection opened and per message received; a run where the lag exceeds 10% of the budget of what it measured (100 ms while connections open, 50 ms after) or a process exceeds its CPU limit is INVALID: excluded from limits, benchmarks and fits, and drawn apart in the charts. A ramp step whose steady load the generator could not carry at the previous step’s measured cost is not run.',
      'Each ramp opens connections at a fixed rate in every step, so steps differ only in how many connections are held; limits are bracketed by bisection between the last passing and the first failing load, and a ramp that ends without a failing step gives a lower bound (≥).',
      'networkBandwidth is judged at the seed’s own SSE workload (1 message/s per connection), from bytes on the wire (TCP bytes read: headers, framing, heartbeats included); the report gives bytes per delivered message against the payload, so the figure can be scaled to another message rate. Realtime’s presence fan-out is reported beside it (S5).',
      'Comparison rules (interference, channel size, the failure run) fire only when a difference is over the rule’s budget and beyond the run-to-run spread of repeated baseline runs (see Run-to-run noise); otherwise they say they cannot tell.',
      report.generator?.agents.length
        ? `The generator ran on agents (${report.generator.agents.join(', ')}) with ${report.generator.localWorkers} local worker(s); each agent’s clock offset was measured and corrected in every stamp.`
        : 'Everything ran on loopback on one machine: server, generator workers (source addresses 127.0.0.x) and database share the CPUs, so absolute figures are for this machine; the ratios and the shape of the curves are what transfer. Limits that stay lower bounds need the generator elsewhere: `fanout load agent` on other machines, `fanout spike --agents …`.',
      ...report.notes,
    ],
  });
  return b;
}
