// The end-of-run summary: latency percentiles per stream kind, delivery (loss,
// duplicates, reordering), connections and stability, server resources, the generator's
// health, and each threshold with its verdict. Plain text for a terminal; the same rows
// feed the Markdown report.
import type { LatencySummary } from './histogram.js';
import type { RunResult } from './result.js';
import { formatThreshold } from './thresholds.js';

export type Cell = string | number | null | undefined;

export function num(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function textTable(headers: string[], rows: Cell[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? num(c, 2) : (c ?? '–'))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: Cell[]): string => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '─'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export const LATENCY_HEADERS = ['latency (ms)', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max'];

function latRow(label: string, s: LatencySummary | null | undefined): Cell[] | null {
  if (!s || !s.count) return null;
  return [label, s.count.toLocaleString('en-US'), num(s.p50, 2), num(s.p90, 2), num(s.p99, 2), num(s.p999, 2), num(s.max, 2)];
}

/** Rows for every latency a run measured, in a fixed order. */
export function latencyRows(r: RunResult): Cell[][] {
  const sse = r.groups.sse;
  const rt = r.groups.realtime;
  const rows = [
    latRow('sse end-to-end (intended → receive)', sse?.latency.endToEnd),
    latRow('sse server stamp → receive (diagnostic)', sse?.latency.delivery),
    latRow('sse server stamp, clock-offset corrected', sse?.latency.deliveryClockCorrected),
    latRow('sse connect', sse?.connect),
    latRow('sse first event', sse?.firstEvent),
    latRow('realtime broadcast (intended → receive)', rt?.latency.broadcast),
    latRow('realtime presence (intended → receive)', rt?.latency.presence),
    latRow('realtime comments (intended → receive)', rt?.latency.comments),
    latRow('realtime comments (commit_timestamp → receive)', rt?.latency.commentsCommit),
    latRow('realtime connect', rt?.connect),
    latRow('realtime join (phx_join → reply)', rt?.join),
    latRow('realtime subscribe (connect + join)', rt?.subscribe),
    latRow('realtime first event', rt?.firstEvent),
    latRow('fan-out completion (last subscriber)', r.fanout.completion),
  ];
  return rows.filter((x): x is Cell[] => x !== null);
}

export const DELIVERY_HEADERS = ['delivery', 'received', 'unique', 'lost', 'duplicates', 'reordered', 'missed while down', 'reliability %'];

export function deliveryRows(r: RunResult): Cell[][] {
  const rows: Cell[][] = [];
  for (const g of Object.values(r.groups)) {
    if (!g) continue;
    for (const [kind, d] of Object.entries(g.delivery)) {
      rows.push([g.group === 'sse' ? 'sse' : `realtime ${kind}`, d.received, d.unique, d.lost, d.duplicates, d.reordered, d.missedWhileDisconnected, d.reliabilityPct === null ? '–' : num(d.reliabilityPct, 3)]);
    }
  }
  return rows;
}

export const CONNECTION_HEADERS = ['connections', 'planned', 'established', 'success %', 'peak open', 'stability %', 'reconnects', 'drops', 'msgs/s', 'KB/s per conn', 'errors'];

export function connectionRows(r: RunResult): Cell[][] {
  return Object.values(r.groups)
    .filter((g) => !!g)
    .map((g) => [g.group, g.planned, g.established, num(g.connectSuccessPct, 2), g.peakOpen, num(g.stabilityPct, 3), g.reconnects, g.drops, num(g.messagesPerSec, 1), num(g.bandwidthPerConnectionKBps, 3), Object.values(g.errors).reduce((a, b) => a + b, 0)]);
}

/** What a delivered message costs on the wire against the payload it carries, per transport. */
export function wireLines(r: RunResult): string[] {
  const out: string[] = [];
  for (const g of Object.values(r.groups)) {
    if (!g || g.perMessage.wireBytes === null) continue;
    const p = g.perMessage;
    out.push(`${g.group} wire: ${num(p.wireBytes, 0)} B per delivered message${p.payloadBytes === null ? '' : ` for a ${num(p.payloadBytes, 0)} B payload (${num(p.overheadPct, 0)}% protocol overhead)`}; ${num(g.bandwidthPerConnectionKBps, 3)} KB/s per connection at ${num(g.messagesPerSec / Math.max(1, g.peakOpen), 2)} messages/s each`);
  }
  return out;
}

export function errorLines(r: RunResult): string[] {
  const out: string[] = [];
  for (const g of Object.values(r.groups)) {
    if (!g) continue;
    const errs = Object.entries(g.errors).sort((a, b) => b[1] - a[1]);
    if (errs.length) out.push(`${g.group} errors: ${errs.map(([k, v]) => `${k} ×${v}`).join(', ')}`);
    const codes = Object.entries(g.closeCodes).sort((a, b) => b[1] - a[1]);
    if (codes.length) out.push(`${g.group} closes: ${codes.map(([k, v]) => `${k} ×${v}`).join(', ')}`);
    if (g.negativeLatencies) out.push(`${g.group}: ${g.negativeLatencies} negative latencies (receiver clock behind sender) recorded as 0`);
  }
  for (const [name, p] of Object.entries(r.publish)) {
    out.push(`publisher ${name}: ${p.ok}/${p.sent} accepted, rtt p99 ${num(p.rtt.p99, 1)} ms, left its schedule late by p99 ${num(p.lateness.p99, 1)} ms${p.failed ? `, failed ${Object.entries(p.errors).map(([k, v]) => `${k} ×${v}`).join(', ')}` : ''}`);
  }
  return out;
}

export function serverLines(r: RunResult): string[] {
  const s = r.server;
  const m = s.memoryPerConnection;
  if (!s.sources.length) return ['server: not sampled (give --server-pid or --metrics-url)'];
  return [
    `server (${s.sources.join(', ')}): CPU idle ${num(s.idleCpuPct)}% → steady ${num(s.steadyCpuPct)}% (${num(s.cpuPer100ConnectionsPct, 2)}% per 100 connections); RSS ${num(s.rssStartMb)} → peak ${num(s.rssPeakMb)} MB`,
    `memory per connection: ${m && s.memoryMeasured ? `${num(m.kbPerConnection, 2)} KB (slope of RSS over ${m.n} samples, ${num(m.xMin, 0)}–${num(m.xMax, 0)} connections, r² ${num(m.r2, 3)})` : `not measured — ${s.memoryNotMeasured ?? 'no RSS samples'}`}`,
    `event-loop lag p99 max ${num(s.eventLoopLagP99MaxMs, 1)} ms; open files max ${num(s.openFilesMax, 0)}; machine CPU mean ${num(s.machineCpuMeanPct)}%`,
    ...s.problems.map((p) => `  sampling problem: ${p}`),
  ];
}

export function generatorLine(r: RunResult): string {
  const g = r.generator;
  const c = g.cost;
  const cap = g.capacity;
  const cost = c.cpuMsPerConnect !== null || c.cpuUsPerMessage !== null
    ? `; cost ${num(c.cpuMsPerConnect, 2)} ms CPU per connection opened, ${num(c.cpuUsPerMessage, 0)} µs per message received → one worker opens ~${num(cap.connectsPerSecPerWorker, 0)} connections/s and receives ~${num(cap.messagesPerSecPerWorker, 0)} messages/s within ${cap.budgetPct}% of a core`
    : '';
  return `generator: ${g.workers} worker processes + coordinator, event-loop lag p99 ${num(g.lagConnecting.p99, 1)} ms while connecting, ${num(g.lagSteady.p99, 1)} ms after (max ${num(g.lag.max, 1)}), schedule lateness p99 ${num(g.scheduleLateness.p99, 1)} ms, CPU per worker ${g.perWorkerCpuMeanPct.map((x) => `${x}%`).join(' ')}, coordinator ${g.coordinatorCpuMeanPct}%${cost} — ${g.valid ? 'VALID' : `INVALID: ${g.reasons.join('; ')}`}`;
}

export function verdict(r: RunResult): string {
  if (!r.valid) return 'INVALID (the generator saturated; these are not the server’s figures)';
  return r.passed ? 'PASSED' : 'FAILED';
}

export function formatSummary(r: RunResult): string {
  const out: string[] = [];
  out.push(`${r.name}: ${r.config.pattern}, ${num(r.durationS)} s against ${r.target.url} — ${verdict(r)}`, '');
  out.push(textTable(CONNECTION_HEADERS, connectionRows(r)), '');
  out.push(textTable(LATENCY_HEADERS, latencyRows(r)), '');
  const d = deliveryRows(r);
  if (d.length) out.push(textTable(DELIVERY_HEADERS, d), '');
  if (r.fanout.judged) out.push(`fan-out: ${r.fanout.complete}/${r.fanout.judged} messages reached every live subscriber (${num(r.fanout.completePct, 2)}%)`);
  out.push(...wireLines(r), ...errorLines(r), ...serverLines(r), generatorLine(r));
  for (const f of r.faults) out.push(`fault at ${f.atS} s: ${f.label} — ${f.ok ? 'done' : `FAILED: ${f.error}`}`);
  if (r.clock) out.push(`clock: server − generator ${num(r.clock.offsetMs, 2)} ms ± ${num(r.clock.uncertaintyMs, 2)} (from ${r.clock.samples} publish round trips)`);
  if (r.aborted) out.push(`ABORTED at ${r.aborted.atS} s: ${r.aborted.reason}`);
  for (const n of r.notes) out.push(`note: ${n}`);
  const judged = r.thresholds.filter((t) => t.status !== 'no-data' || !t.isDefault);
  if (judged.length) {
    out.push('', 'thresholds:');
    for (const t of judged) out.push(`  ${t.status === 'pass' ? '✓' : '✗'} ${formatThreshold(t)}  (actual ${t.actual === null ? 'no data' : num(t.actual, 3)}${t.judgedOn ? `, judged on ${t.judgedOn}: nothing was published by the tester` : ''})${t.source ? `  — ${t.source}` : ''}`);
  }
  return out.join('\n');
}
