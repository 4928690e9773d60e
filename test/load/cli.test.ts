// `fanout load` as a user runs it: a child process against a local server, checked by
// exit code, stdout and stderr.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startFaultyServer, type FaultyServer } from './fixtures/faulty-sse-server.js';
import type { RunResult } from '../../src/load/result.js';

const FANOUT = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));

function fanout(args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [FANOUT, ...args], { timeout: timeoutMs, env: { ...process.env, FANOUT_SERVICE_KEY: '', FANOUT_ANON_KEY: '' } }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr, ms: Date.now() - started });
    });
  });
}

let srv: FaultyServer;
beforeAll(async () => {
  srv = await startFaultyServer();
});
afterAll(async () => {
  await srv.close();
});

// The machine is shared with other test suites: generator limits are loosened except where validity is the subject.
const base = (): string[] => ['load', 'sse', '--target', srv.url, '--service-key', 'k', '--path', 'content', '--connections', '6', '--streams', '2', '--rate', '4', '--duration', '2.5', '--ramp', '0.5', '--quiet', '--generator-max-lag-ms', '2000'];

describe('fanout load (CLI)', () => {
  it('refuses a non-loopback target unless --allow-remote, naming the flag (exit 2)', async () => {
    const r = await fanout(['load', 'sse', '--target', 'https://example.com', '--duration', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to load-test example\.com.*--allow-remote/);
  });

  it('rejects a malformed threshold and a bad number (exit 2)', async () => {
    expect((await fanout([...base(), '--threshold', 'p99 under 5'])).stderr).toMatch(/invalid threshold "p99 under 5"/);
    const bad = await fanout([...base(), '--connections', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--connections must be/);
  });

  it('passes (exit 0) and prints the full result with --json', async () => {
    const r = await fanout([...base(), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as RunResult;
    expect(result.groups.sse!.established).toBe(6);
    expect(result.groups.sse!.latency.delivery!.count).toBeGreaterThan(0);
    expect(result.metrics['sse.latency.p99']).toBe(result.groups.sse!.latency.delivery!.p99);
    expect(result.clock).not.toBeNull();
    expect(Math.abs(result.clock!.offsetMs)).toBeLessThanOrEqual(result.clock!.uncertaintyMs + 1); // same machine, same clock
    expect(result.passed).toBe(true);
  });

  it('exits 1 when a declared threshold fails, and shows it in the summary table', async () => {
    srv.faults.delayMs = 60;
    try {
      const r = await fanout([...base(), '--threshold', 'sse.latency.p99<20']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/FAILED/);
      expect(r.stdout).toMatch(/✗ sse\.latency\.p99 < 20 {2}\(actual \d+/);
      expect(r.stdout).toMatch(/latency \(ms\)\s+count\s+p50\s+p90\s+p99\s+p99\.9\s+max/);
    } finally {
      srv.faults.delayMs = 0;
    }
  });

  it('with --abort-on-fail stops as soon as the merged live p99 fails', async () => {
    srv.faults.delayMs = 150;
    try {
      const args = base();
      args[args.indexOf('--duration') + 1] = '30';
      const r = await fanout([...args, '--threshold', 'sse.latency.p99<50', '--abort-on-fail']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/ABORTED at [\d.]+ s: sse\.latency\.p99 [\d.]+ failed < 50/);
      expect(r.ms).toBeLessThan(20_000);
    } finally {
      srv.faults.delayMs = 0;
    }
  });

  it('loads any SSE URL (--sse-url): measures what the server pushes, latency from the events\' ts', async () => {
    // Something else publishes to this stream while the load runs.
    const publisher = setInterval(() => void fetch(`${srv.url}/api/content/ext/progress`, { method: 'POST', body: '{}' }).then((r) => r.arrayBuffer()), 200);
    try {
      const r = await fanout(['load', 'sse', '--sse-url', `${srv.url}/api/content/ext/progress`, '--connections', '5', '--duration', '2.5', '--ramp', '0.3', '--quiet', '--json', '--generator-max-lag-ms', '2000']);
      expect(r.code, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout) as RunResult;
      expect(result.target.kind).toBe('sse-url');
      expect(result.publish).toEqual({});
      expect(result.groups.sse!.established).toBe(5);
      expect(result.groups.sse!.latency.delivery!.count).toBeGreaterThanOrEqual(5 * 5);
      expect(result.groups.sse!.deliveryTotal.lost).toBe(0);
    } finally {
      clearInterval(publisher);
    }
  });

  it('marks a run whose generator exceeded its limits INVALID (exit 3)', async () => {
    const args = base();
    args[args.indexOf('--generator-max-lag-ms') + 1] = '0';
    const r = await fanout(args);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/INVALID/);
  });
});
