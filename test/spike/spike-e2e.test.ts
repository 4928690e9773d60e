// End to end: the smallest spike profile against an embedded gateway (a real `fanout
// serve` child process, a dedicated PostgreSQL when the machine has one, real worker
// processes), then the three report files, checked for every section filled from
// measured values, and `fanout report` re-rendering them from the JSON.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runSpike } from '../../src/spike/runner.js';
import { writeReport } from '../../src/spike/report-render.js';
import { SSE_SCALES } from '../../src/spike/matrix.js';
import { dedicatedPostgresUnavailable } from '../../src/spike/postgres.js';
import type { Benchmark, Figure, SpikeReport } from '../../src/spike/model.js';

const exec = promisify(execFile);
const FANOUT = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));

let dir: string;
let report: SpikeReport;
let files: { json: string; md: string; html: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-spike-e2e-'));
  // The machine is shared with other suites: loose generator limits keep contention from
  // invalidating runs here; this test is about the report being complete, not about speed.
  report = await runSpike({ profile: 'ci', cost: { users: 2000 }, generator: { maxLagMs: 5000, maxCpuPct: 100 } });
  files = writeReport(dir, report);
}, 240_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const measured = (f: Figure | Benchmark): boolean => typeof f.value === 'number' && Number.isFinite(f.value) && f.basis.length > 0;

describe('fanout spike (ci profile)', () => {
  it('ran every scenario of the seed matrix, the ramps and (given PostgreSQL) the failure scenario', () => {
    const ids = report.scenarios.map((s) => s.id);
    for (const n of SSE_SCALES) expect(ids).toContain(`sse-${n}`);
    for (const id of ['rt-5x10', 'rt-10x10', 'rt-20x5', 'rt-presence-100', 'rt-comments-hf', 'hybrid']) expect(ids).toContain(id);
    expect(ids.some((i) => i.startsWith('ramp-sse-'))).toBe(true);
    expect(ids.some((i) => i.startsWith('ramp-realtime-'))).toBe(true);
    if (!dedicatedPostgresUnavailable()) {
      expect(ids).toContain('fault-db');
      expect('skipped' in report.fault).toBe(false);
    }
    // The comparison baselines ran twice each, for their run-to-run spread.
    for (const id of ['sse-100', 'rt-10x10', 'rt-20x5', 'rt-presence-100']) expect(report.scenarios.filter((x) => x.repeatOf === id).map((x) => x.id)).toEqual([`${id}#2`]);
    expect(report.wallClockS).toBeLessThan(240);
  });

  it('measured every run: connections, latencies, delivery accounting, server and generator figures', () => {
    for (const s of report.scenarios) {
      const r = s.result;
      if (r.config.sse) {
        const g = r.groups.sse!;
        expect(g.established, s.id).toBe(r.config.sse.connections);
        expect(g.connect.count, s.id).toBeGreaterThanOrEqual(r.config.sse.connections);
        expect(g.latency.delivery?.count ?? 0, s.id).toBeGreaterThan(0);
        expect(g.latency.endToEnd?.count ?? 0, s.id).toBeGreaterThan(0);
        expect(g.perMessage.wireBytes ?? 0, s.id).toBeGreaterThan(g.perMessage.payloadBytes ?? Infinity);
        expect(g.deliveryTotal.unique, s.id).toBeGreaterThan(0);
      }
      if (r.config.realtime) {
        const g = r.groups.realtime!;
        expect(g.established, s.id).toBeGreaterThan(0);
        expect(g.join?.count ?? 0, s.id).toBeGreaterThan(0);
        expect(g.subscribe?.count ?? 0, s.id).toBeGreaterThanOrEqual(g.join?.count ?? 0);
        expect(g.latency.presence?.count ?? 0, s.id).toBeGreaterThan(0);
        if (r.config.realtime.docRate > 0 && r.durationS >= 2) expect(g.latency.broadcast?.count ?? 0, s.id).toBeGreaterThan(0);
      }
      expect(r.server.sources.length, s.id).toBeGreaterThan(0);
      expect(r.server.rssPeakMb, s.id).toBeGreaterThan(10);
      expect(r.generator.lag.count, s.id).toBeGreaterThan(0);
      expect(r.timeline.length, s.id).toBeGreaterThan(0);
    }
  });

  it('filled ScalabilityLimits and PerformanceBenchmarks by strength: measured, lower bound, or not measured with why', () => {
    const l = report.limits;
    for (const f of [l.sse.maxConcurrentConnections, l.sse.recommendedLimit, l.supabaseRealtime.maxChannels, l.hybrid.resourceUsageProfile.baseRssMb, l.hybrid.resourceUsageProfile.bandwidthPerConnectionKBps, l.hybrid.resourceUsageProfile.sseWireBytesPerMessage]) {
      expect(measured(f), f.basis).toBe(true);
    }
    // A capacity is exactly as strong as its ramp: a lower bound unless a valid fail bracketed it.
    for (const [d, cap] of [[report.degradation.sse, l.sse.maxConcurrentConnections], [report.degradation.realtime, l.supabaseRealtime.recommendedLimit]] as const) {
      expect(['measured', 'lower-bound', 'not-measured']).toContain(d!.strength);
      if (cap.value !== null) expect(cap.strength).toBe(d!.strength === 'measured' ? 'measured' : 'lower-bound');
      if (d!.strength !== 'measured') expect(l.sse.performanceDegradationPoint.value === null || d!.transport !== 'sse').toBe(true);
    }
    expect(l.sse.maxConcurrentConnections.value).toBeGreaterThanOrEqual(200);
    const all = [...Object.values(report.benchmarks.sse), ...Object.values(report.benchmarks.supabaseRealtime), ...Object.values(report.benchmarks.resourceUsage)];
    expect(all).toHaveLength(9);
    for (const b of all) {
      // Either measured and judged, or not measured with the reason — never a pass on a figure that is not a measurement.
      if (b.value === null) expect(b.pass, b.basis).toBeNull();
      else expect(typeof b.pass, b.basis).toBe('boolean');
      expect(b.basis.length).toBeGreaterThan(10);
    }
    expect(measured(report.benchmarks.sse.messageDeliveryLatency)).toBe(true);
    // Benchmarks trace back to runs: the SSE latency figure is the worst intended-time p99 of the SSE matrix.
    const worst = Math.max(...report.scenarios.filter((s) => s.category === 'sse' && s.result.valid).map((s) => s.result.groups.sse!.latency.endToEnd!.p99!));
    expect(report.benchmarks.sse.messageDeliveryLatency.value).toBeCloseTo(worst, 3);
    // Bandwidth is judged at the seed's SSE workload, with what one message costs on the wire against its payload.
    expect(report.benchmarks.resourceUsage.networkBandwidth.basis).toMatch(/1 message\/s per connection, spike-003's messageFrequency.*B on the wire for a \d+ B payload/);
    // Noise: each baseline's figure over its two runs.
    expect(report.noise.find((n) => n.scenario === 'sse-100' && /p99/.test(n.figure))?.values.length).toBe(2);
  });

  it('stated the architecture decision with rules and evidence, and a cost projection', () => {
    for (const part of [report.decision.primary, report.decision.scaling, report.decision.fallbacks]) {
      expect(part.length).toBeGreaterThan(0);
      for (const d of part) {
        expect(d.statement.length).toBeGreaterThan(20);
        expect(d.rule.length).toBeGreaterThan(10);
      }
    }
    expect(report.decision.primary.some((d) => /SSE/.test(d.statement))).toBe(true);
    expect(report.cost.users).toBe(2000);
    expect(report.cost.supabase.monthlyUsd).toBeGreaterThan(0);
    expect(report.cost.inputs.realtimeReceivedPerUserPerSec).toBeGreaterThan(0);
    expect(report.cost.assumptions.length).toBeGreaterThanOrEqual(4);
    expect(report.degradation.sse?.steps.length).toBeGreaterThan(0);
    expect(report.degradation.realtime?.steps.length).toBeGreaterThan(0);
  });

  it('wrote report.json, report.md and a self-contained report.html with every section and chart', async () => {
    const json = JSON.parse(readFileSync(files.json, 'utf8')) as SpikeReport;
    expect(json.scenarios).toHaveLength(report.scenarios.length);
    const md = readFileSync(files.md, 'utf8');
    const html = readFileSync(files.html, 'utf8');
    const sections = ['Architecture decision', 'ScalabilityLimits (by strength of evidence)', 'PerformanceBenchmarks', 'Run-to-run noise', 'Charts', 'Scenario matrix', 'One subsystem failing', 'Degradation ramps', 'Monthly cost at 2,000 concurrent users', 'How the numbers were measured'];
    for (const s of sections) {
      expect(md).toContain(s);
      expect(html).toContain(s.replace(/&/g, '&amp;'));
    }
    // The same measured figures appear in both renderings.
    const lat = String(report.benchmarks.sse.messageDeliveryLatency.value);
    expect(md).toContain(lat.split('.')[0]!);
    for (const s of report.scenarios) {
      expect(md).toContain(`| ${s.id} |`);
      expect(html).toContain(`<td>${s.id}</td>`);
    }
    // Charts: inline SVG in the HTML, SVG files beside the Markdown.
    expect((html.match(/<svg /g) ?? []).length).toBeGreaterThanOrEqual(5);
    for (const id of ['connections', 'latency', 'rss', 'degradation-sse', 'degradation-realtime']) {
      expect(html).toContain(`id="chart-${id}"`);
      expect(md).toContain(`charts/${id}.svg`);
    }
    expect(readdirSync(join(dir, 'charts')).filter((f) => f.endsWith('.svg')).length).toBeGreaterThanOrEqual(5);
    // Self-contained: no scripts, stylesheets or images fetched from anywhere.
    expect(html).not.toMatch(/<script|<link|<img|src=|url\(/i);
    // `fanout report` renders the same files again from the JSON.
    const out = join(dir, 'again');
    const { stdout } = await exec(process.execPath, [FANOUT, 'report', files.json, '--out-dir', out, '--png', join(out, 'png'), '--charts', 'latency']);
    expect(stdout).toMatch(/wrote .*report\.md and .*report\.html/);
    // A chart rendered to PNG by headless Chromium.
    const png = readFileSync(join(out, 'png', 'latency.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(5000);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toBe(md);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toBe(html);
  });
});
