// Exit codes a CI can act on, as a user meets them: `fanout load`, `fanout spike` and
// `fanout report` as child processes. 2 bad usage, 4 the target or set-up failed, each
// with one line on stderr naming the reason (no stack trace).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const FANOUT = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));

function fanout(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [FANOUT, ...args], { timeout: 60_000, env: { ...process.env, FANOUT_SERVICE_KEY: '', FANOUT_ANON_KEY: '', FANOUT_DEBUG: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** One line of stderr, no stack frames. */
function expectOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

let gw: TestGateway;
let closedPort: number;
let dir: string;
beforeAll(async () => {
  gw = await startGateway();
  // A port nothing listens on: bind, read the number, close.
  const s: Server = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  closedPort = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  dir = mkdtempSync(join(tmpdir(), 'fanout-exit-'));
});
afterAll(async () => {
  await gw.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('exit codes', () => {
  it('4 when the target cannot be reached, naming it', async () => {
    const r = await fanout(['load', 'sse', '--target', `http://127.0.0.1:${closedPort}`, '--service-key', 'k', '--duration', '1', '--quiet']);
    expect(r.code).toBe(4);
    expectOneLine(r.stderr, new RegExp(`^fanout load sse: cannot reach the target http://127\\.0\\.0\\.1:${closedPort}/healthz: ECONNREFUSED`));
  });

  it('4 when the target refuses the service key', async () => {
    const r = await fanout(['load', 'sse', '--target', gw.url, '--service-key', gw.keys.anon, '--connections', '2', '--duration', '1', '--quiet']);
    expect(r.code).toBe(4);
    expectOneLine(r.stderr, /^fanout load sse: the target refused the service_role key \(POST \/api\/content answered 403\)/);
  });

  it('2 when --server-pid is not the target, naming the pid the target reports', async () => {
    // The in-process gateway is this test process; another process is not the target.
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const r = await fanout(['load', 'sse', '--target', gw.url, '--service-key', gw.keys.service_role, '--server-pid', String(other.pid), '--connections', '2', '--duration', '1', '--quiet']);
      expect(r.code).toBe(2);
      expectOneLine(r.stderr, new RegExp(`--server-pid ${other.pid} is not the target: .*/healthz reports pid ${process.pid}`));
    } finally {
      other.kill();
    }
    const missing = await fanout(['load', 'sse', '--target', gw.url, '--service-key', gw.keys.service_role, '--server-pid', '999999999', '--connections', '2', '--duration', '1', '--quiet']);
    expect(missing.code).toBe(2);
    expectOneLine(missing.stderr, /--server-pid 999999999: no such process/);
  });

  it('2 for bad usage in load, spike and report (an unreadable or foreign report file is bad usage)', async () => {
    const load = await fanout(['load', 'sse', '--connections', 'many']);
    expect(load.code).toBe(2);
    const spike = await fanout(['spike', '--cost-users', 'lots', '--only', 'nothing']);
    expect(spike.code).toBe(2);
    expectOneLine(spike.stderr, /^fanout spike: --cost-users must be a non-negative number/);
    const report = await fanout(['report', join(dir, 'missing.json')]);
    expect(report.code).toBe(2);
    expectOneLine(report.stderr, /^fanout report: cannot read /);
    writeFileSync(join(dir, 'other.json'), '{"hello":1}');
    const notReport = await fanout(['report', join(dir, 'other.json')]);
    expect(notReport.code).toBe(2);
    expectOneLine(notReport.stderr, /is not a fanout spike report/);
  });

  it('4 when `fanout spike --target` cannot be reached', async () => {
    const r = await fanout(['spike', '--target', `http://127.0.0.1:${closedPort}`, '--anon-key', 'a', '--service-key', 's', '--quiet']);
    expect(r.code).toBe(4);
    expectOneLine(r.stderr, /^fanout spike: cannot reach the target .*ECONNREFUSED/);
  });
});
