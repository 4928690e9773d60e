// `fanout alerts --prometheus` writes the alert rules as a Prometheus rule file: Debian's
// promtool accepts it (`check rules`), and its unit-test runner shows the rules behave as
// Fanout's own engine does — fire after `for`, stay firing between the resolve level and
// the threshold (hysteresis), resolve below it — on series named as /metrics names them.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFanout } from '../helpers/cli.js';

const exec = promisify(execFile);
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-promrules-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function promtool(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await exec('promtool', args, { cwd: dir });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

async function ruleFile(name: string, extraArgs: string[] = []): Promise<string> {
  const r = await runFanout(['alerts', '--prometheus', ...extraArgs]);
  expect(r.code, r.stderr).toBe(0);
  writeFileSync(join(dir, name), r.stdout);
  return r.stdout;
}

describe('fanout alerts --prometheus', () => {
  it('writes the built-in rules as a file promtool accepts', async () => {
    const text = await ruleFile('builtin.yml');
    const check = await promtool('check', 'rules', 'builtin.yml');
    expect(check.code, check.out).toBe(0);
    expect(check.out).toContain('SUCCESS: 7 rules found');
    expect(text).toContain('alert: "FanoutSseConnectionsHigh"');
  });

  it('includes an operator file’s rules and leaves out the ones it disables', async () => {
    writeFileSync(
      join(dir, 'ops.json'),
      JSON.stringify({
        rules: [
          { name: 'event_loop_lag_high', enabled: false },
          { name: 'ws_flood', signal: 'messages_in_per_second', threshold: 5000, resolve: 4000, for: '30s', severity: 'critical', description: 'inbound flood' },
          { name: 'few_channels', signal: 'channels', op: '<', threshold: 1, window: '5m', aggregate: 'max' },
        ],
      }),
    );
    const text = await ruleFile('ops.yml', ['--alerts', join(dir, 'ops.json')]);
    const check = await promtool('check', 'rules', 'ops.yml');
    expect(check.code, check.out).toBe(0);
    expect(check.out).toContain('SUCCESS: 8 rules found');
    expect(text).not.toContain('FanoutEventLoopLagHigh');
    expect(text).toContain('(max_over_time((sum by (job, instance) (fanout_realtime_channels))[5m:])) < 1');
  });

  it('prints the rules with --json in the shape an --alerts file takes, which reads back the same', async () => {
    const first = await runFanout(['alerts', '--json']);
    expect(first.code).toBe(0);
    writeFileSync(join(dir, 'exported.json'), first.stdout);
    const again = await runFanout(['alerts', '--json', '--alerts', join(dir, 'exported.json')]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual(JSON.parse(first.stdout));
    expect((JSON.parse(first.stdout) as { rules: unknown[] }).rules).toHaveLength(7);
  });

  it('refuses a bad operator file with exit code 2 and the problem on the first line', async () => {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ rules: [{ name: 'x', signal: 'no_such_signal', threshold: 1 }] }));
    const r = await runFanout(['alerts', '--prometheus', '--alerts', join(dir, 'bad.json')]);
    expect(r.code).toBe(2);
    expect(r.firstLine).toMatch(/^fanout alerts: invalid configuration: --alerts .*bad\.json: rule "x" \(rules\[0\]\): signal: /);
  });

  it('fires, holds between resolve level and threshold, and resolves, in promtool’s rule tests', async () => {
    await ruleFile('rules.yml');
    const labels = (rule: string, alertname: string) => ({ job: 'fanout', instance: 'gw1', severity: 'warning', fanout_rule: rule, alertname });
    // Series every 5 s. SSE connections: 100, then 200 (over 150) from 5 s to 20 s, 145
    // (between the resolve level 140 and the threshold) to 40 s, then 130 (below 140).
    const sse = 'fanout_connections{transport="sse",job="fanout",instance="gw1"}';
    const tests = {
      rule_files: ['rules.yml'],
      evaluation_interval: '5s',
      tests: [
        {
          interval: '5s',
          input_series: [{ series: sse, values: '100 200 200 200 200 145 145 145 145 130 130 130 130' }],
          alert_rule_test: [
            { eval_time: '5s', alertname: 'FanoutSseConnectionsHigh', exp_alerts: [] },
            { eval_time: '15s', alertname: 'FanoutSseConnectionsHigh', exp_alerts: [{ exp_labels: labels('sse_connections_high', 'FanoutSseConnectionsHigh'), exp_annotations: sseAnnotations() }] },
            { eval_time: '35s', alertname: 'FanoutSseConnectionsHigh', exp_alerts: [{ exp_labels: labels('sse_connections_high', 'FanoutSseConnectionsHigh'), exp_annotations: sseAnnotations('145') }] },
            { eval_time: '50s', alertname: 'FanoutSseConnectionsHigh', exp_alerts: [] },
          ],
        },
        {
          // 3 errors a second for 5 minutes: above 1/s, so the alert fires once `for: 2m` has passed.
          interval: '15s',
          input_series: [{ series: 'fanout_errors_total{kind="auth",job="fanout",instance="gw1"}', values: '0+45x20' }],
          alert_rule_test: [
            { eval_time: '1m', alertname: 'FanoutErrorRateHigh', exp_alerts: [] },
            { eval_time: '4m', alertname: 'FanoutErrorRateHigh', exp_alerts: [{ exp_labels: labels('error_rate_high', 'FanoutErrorRateHigh'), exp_annotations: errorAnnotations() }] },
          ],
        },
      ],
    };
    writeFileSync(join(dir, 'rules.test.yml'), JSON.stringify(tests, null, 2));
    const run = await promtool('test', 'rules', 'rules.test.yml');
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain('SUCCESS');
  });
});

function sseAnnotations(value = '200'): Record<string, string> {
  return {
    summary: 'more than 150 SSE connections (the RealtimeMonitor threshold of the original spike design)',
    description: `sse_connections_high on gw1: connections_sse is ${value} (fires > 150, resolves past 140)`,
  };
}

function errorAnnotations(): Record<string, string> {
  return {
    summary: 'more than one error per second (bad requests, auth failures, protocol and internal errors)',
    description: 'error_rate_high on gw1: errors_per_second is 3 (fires > 1, resolves past 0.5)',
  };
}
