// deploy/grafana/fanout-dashboard.json is built on the series /metrics really exposes: every
// panel query is PromQL that promtool accepts, every metric it (and every exported alert
// rule) reads is in a real scrape of a gateway, and the panels fit Grafana's 24-column grid.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { cleanBus, randomPrefix } from '../bus/helpers.js';
import { promqlMetricNames } from '../../src/monitor/promql.js';

const exec = promisify(execFile);
const FILE = new URL('../../deploy/grafana/fanout-dashboard.json', import.meta.url);

interface Panel {
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string }[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string }[] };
}

const dashboard = JSON.parse(readFileSync(FILE, 'utf8')) as Dashboard;
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
/** A panel query as Prometheus itself would receive it once Grafana has filled in its variables. */
const concrete = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', '.*').replaceAll('$instance', '.*');

let dir: string;
let gw: TestGateway;
let prefix: string;
let scraped: Set<string>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-grafana-'));
  // With a bus, so the bus series exist too.
  prefix = randomPrefix();
  gw = await startGateway({ bus: 'redis', busPrefix: prefix });
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  scraped = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
});

afterAll(async () => {
  await gw?.stop();
  await cleanBus('redis', prefix);
  rmSync(dir, { recursive: true, force: true });
});

/** The metric names a PromQL expression reads (label names and functions excluded). */
function metricNames(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '');
  return [...withoutLabels.matchAll(/\b((?:fanout|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

/** A scraped family for a series name: histograms expose `x`, their series are `x_bucket`. */
const family = (name: string) => name.replace(/_bucket$/, '');

describe('the Grafana dashboard', () => {
  it('is a dashboard Grafana can import: uid, title, a data-source variable, panels on the 24-column grid', () => {
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    expect(dashboard.title).toBe('Fanout');
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'job', 'instance']);
    expect(queries.length).toBeGreaterThan(15);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type !== 'row') expect(p.datasource?.uid, p.title).toBe('${datasource}');
    }
  });

  it('queries only PromQL that promtool accepts', async () => {
    const rules = ['groups:', '  - name: dashboard', '    rules:'];
    queries.forEach((q, i) => rules.push(`      - record: fanout:dashboard_query_${i}`, `        expr: ${JSON.stringify(concrete(q.expr))}`));
    writeFileSync(join(dir, 'dashboard-queries.yml'), rules.join('\n') + '\n');
    const { stdout } = await exec('promtool', ['check', 'rules', join(dir, 'dashboard-queries.yml')]);
    expect(stdout).toContain(`SUCCESS: ${queries.length} rules found`);
  });

  it('reads only metrics a real /metrics scrape exposes, as do the exported alert rules', () => {
    const used = new Set([...queries.flatMap((q) => metricNames(q.expr)), ...promqlMetricNames()]);
    const missing = [...used].filter((name) => !scraped.has(family(name)));
    expect(missing).toEqual([]);
    // The dashboard covers the gateway's own families, not only the process ones.
    for (const name of ['fanout_connections', 'fanout_messages_total', 'fanout_delivery_latency_seconds', 'fanout_errors_total', 'fanout_realtime_channels']) {
      expect([...used].map(family)).toContain(name);
    }
  });
});
