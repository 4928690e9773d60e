// `fanout report <report.json>`: renders report.md, report.html and the charts again
// from a spike's JSON (after editing assumptions, or with a newer renderer).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { writeReport } from '../spike/report-render.js';
import { allCharts } from '../spike/report-charts.js';
import { renderChartsToPng } from '../spike/chart-png.js';
import type { SpikeReport } from '../spike/model.js';
import { EXIT } from './exit-codes.js';
import { UsageError, reportCommandError } from './command-errors.js';

export function loadReport(path: string): SpikeReport {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (err) {
    throw new UsageError(`${path} is not JSON: ${(err as Error).message}`);
  }
  const r = data as { version?: unknown } & Partial<Omit<SpikeReport, 'version'>>;
  if (!r || typeof r !== 'object' || !Array.isArray(r.scenarios) || !r.limits || !r.benchmarks || !r.decision || !r.cost) {
    throw new UsageError(`${path} is not a fanout spike report (expected version 2 with scenarios, limits, benchmarks, decision and cost)`);
  }
  if (r.version !== 2) throw new UsageError(`${path} is a version ${String(r.version)} spike report; this fanout renders version 2 (conclusions by strength, run-to-run noise): run \`fanout spike\` again`);
  const report = r as SpikeReport;
  report.errors ??= [];
  return report;
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('render report.md and report.html (with charts) again from a spike report.json')
    .argument('<report.json>', 'a report.json written by `fanout spike`')
    .option('--out-dir <dir>', 'write there instead of next to the JSON')
    .option('--png <dir>', 'also render the charts to PNG in this directory (headless Chromium via playwright-core)')
    .option('--charts <ids>', 'with --png: only these charts, comma-separated (connections, latency, rss, degradation-sse, degradation-realtime, fault)')
    .addHelpText('after', '\nExit codes: 0 written, 2 bad usage (unreadable file, not a spike report), 4 set-up failed (e.g. no Chromium for --png).')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage))
    .action(async (file: string, flags: { outDir?: string; png?: string; charts?: string }) => {
      try {
        const path = resolve(file);
        const report = loadReport(path);
        const dir = flags.outDir ? resolve(flags.outDir) : dirname(path);
        const out = writeReport(dir, report, { json: !!flags.outDir });
        process.stdout.write(`wrote ${out.md} and ${out.html}\n`);
        if (flags.png) {
          const pngs = await renderChartsToPng(allCharts(report), resolve(flags.png), flags.charts?.split(',').map((c) => c.trim()));
          process.stdout.write(`wrote ${pngs.join(', ')}\n`);
        }
        process.exitCode = EXIT.ok;
      } catch (err) {
        process.exitCode = reportCommandError('report', err);
      }
    });
}
