import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertConfigError, DEFAULT_RULES, buildAlertConfig, loadAlertConfig } from '../../src/monitor/alert-rules.js';
import { ConfigError } from '../../src/core/config.js';

function problems(raw: unknown): string {
  try {
    buildAlertConfig(raw, 'test.json');
  } catch (err) {
    expect(err).toBeInstanceOf(AlertConfigError);
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the alerts document to be rejected');
}

describe('alert rules', () => {
  it('has the seed rule and the operator rules by default', () => {
    const { rules, webhook } = loadAlertConfig(undefined);
    expect(webhook).toBeUndefined();
    const sse = rules.find((r) => r.name === 'sse_connections_high')!;
    expect(sse).toMatchObject({ signal: 'connections_sse', op: '>', threshold: 150, resolve: 140 });
    expect(rules.map((r) => r.signal)).toEqual(
      expect.arrayContaining(['delivery_latency_p99_seconds', 'errors_per_second', 'event_loop_lag_p99_seconds', 'open_files_ratio', 'change_feed_lag_p99_seconds']),
    );
    expect(rules).toHaveLength(DEFAULT_RULES.length);
  });

  it('tunes, disables and adds rules, parsing durations', () => {
    const { rules, webhook } = buildAlertConfig(
      {
        rules: [
          { name: 'sse_connections_high', threshold: 500 },
          { name: 'event_loop_lag_high', enabled: false },
          { name: 'flood', signal: 'messages_in_per_second', threshold: 5000, resolve: 4000, for: '30s', window: '2m', resolveFor: 1500, severity: 'critical' },
        ],
        webhook: { url: 'http://127.0.0.1:9/hook' },
      },
      'test',
    );
    // A new threshold without a new resolve level resolves at the new threshold.
    expect(rules.find((r) => r.name === 'sse_connections_high')).toMatchObject({ threshold: 500, resolve: 500, forMs: 10_000 });
    expect(rules.find((r) => r.name === 'event_loop_lag_high')).toBeUndefined();
    expect(rules.find((r) => r.name === 'flood')).toMatchObject({ forMs: 30_000, windowMs: 120_000, resolveForMs: 1500, resolve: 4000, severity: 'critical' });
    expect(webhook).toEqual({ url: 'http://127.0.0.1:9/hook', timeoutMs: 5000, retries: 2, headers: {} });
    expect(buildAlertConfig({ defaults: false, rules: [] }, 'test').rules).toEqual([]);
  });

  it('names the rule and the field of every problem', () => {
    const msg = problems({
      rules: [
        { name: 'a', signal: 'no_such_signal', threshold: 1 },
        { name: 'b', signal: 'connections', threshold: 10, resolve: 20 },
        { name: 'c', signal: 'connections', threshold: 'lots' },
        { name: 'd', signal: 'connections', threshold: 1, for: 'soon' },
        { signal: 'connections', threshold: 1 },
        { name: 'e', signal: 'connections', threshold: 1, colour: 'red' },
        { name: 'e', signal: 'connections', threshold: 2 },
      ],
    });
    expect(msg).toMatch(/rule "a" \(rules\[0\]\): signal: /);
    expect(msg).toMatch(/rule "b" \(rules\[1\]\): resolve: must be at or below the threshold \(10\)/);
    expect(msg).toMatch(/rule "c" \(rules\[2\]\): threshold: /);
    expect(msg).toMatch(/rule "d" \(rules\[3\]\): for: /);
    expect(msg).toMatch(/rules\[4\]: name: required/);
    expect(msg).toMatch(/rule "e" \(rules\[5\]\): .*colour/);
    expect(msg).toMatch(/rule "e" \(rules\[6\]\): duplicate name/);
    expect(msg.startsWith('invalid configuration:')).toBe(true);
  });

  it('rejects a tuned built-in rule whose new values contradict each other, naming it', () => {
    expect(problems({ rules: [{ name: 'sse_connections_high', threshold: 100, resolve: 120 }] })).toMatch(/rule "sse_connections_high" \(rules\[0\]\): resolve: must be at or below/);
  });

  it('rejects unknown top-level fields, a bad webhook URL and a rule that is not an object', () => {
    expect(problems({ rulez: [] })).toMatch(/rulez/);
    expect(problems({ webhook: { url: 'ftp://x/y' } })).toMatch(/webhook\.url: must be an http/);
    expect(problems({ rules: [42] })).toMatch(/rules\[0\]: must be an object/);
  });

  it('reports a missing file and invalid JSON with the file name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-alerts-'));
    expect(() => loadAlertConfig(join(dir, 'missing.json'))).toThrow(/--alerts .*missing\.json: cannot read the file \(ENOENT\)/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ "rules": [ }');
    expect(() => loadAlertConfig(bad)).toThrow(/--alerts .*bad\.json: not valid JSON/);
  });
});
