// The known-answer test for "thresholds judge the latency a user feels": a real gateway
// process is stopped for one second (SIGSTOP, then SIGCONT) in the middle of
// `fanout load sse` (100 streams, 5 events/s each). The gateway stamps each event when it
// gets round to it, so its own stamp (`sse.latency`) hides the stall; the latency from the
// publisher's intended time (`sse.latency_e2e`) shows it, and the default thresholds must
// judge that one — the run fails (exit 1) with the stall in the reported p99 and max.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Auth } from '../../src/core/auth.js';
import { parsePrometheusText } from '../../src/load/sampler.js';
import type { RunResult } from '../../src/load/result.js';
import { TEST_SECRET } from '../helpers/gateway.js';
import { spawnServe, type ServeProcess } from '../helpers/serve-process.js';

const FANOUT = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));
const STALL_MS = 1000;

let gw: ServeProcess;
let dataDir: string;
let keys: { anon: string; service_role: string };

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fanout-stall-'));
  gw = await spawnServe(['--host', '127.0.0.1'], dataDir, { FANOUT_MAX_CONNECTIONS_PER_USER: '100000' });
  keys = await new Auth(TEST_SECRET).projectKeys();
});

afterAll(async () => {
  if (gw.proc.exitCode === null) {
    gw.proc.kill('SIGCONT');
    gw.proc.kill('SIGTERM');
    await gw.exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

async function openSseConnections(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return parsePrometheusText(text).get('fanout_connections')?.find((s) => s.labels.transport === 'sse')?.value ?? 0;
}

describe('a gateway stalled for one second mid-run', () => {
  it('fails the default thresholds on the intended-time latency, with the stall in its p99 and max', async () => {
    const pid = gw.proc.pid!;
    const run = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        // Generator limits are loosened: the machine is shared, and the generator's validity is not the subject here.
        [FANOUT, 'load', 'sse', '--target', gw.url, '--service-key', keys.service_role, '--server-pid', String(pid), '--connections', '100', '--streams', '100', '--rate', '5', '--duration', '9', '--ramp', '1', '--json', '--quiet', '--generator-max-lag-ms', '2000', '--generator-max-cpu', '100'],
        { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    // Stop the gateway once every stream is open and events are flowing.
    const deadline = Date.now() + 60_000;
    while ((await openSseConnections(gw.url)) < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500));
    gw.proc.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, STALL_MS));
    gw.proc.kill('SIGCONT');

    const r = await run;
    expect(r.code, r.stderr).toBe(1);
    const result = JSON.parse(r.stdout) as RunResult;
    expect(result.valid).toBe(true);
    const sse = result.groups.sse!;
    expect(sse.established).toBe(100);
    // The stall is in the end-to-end figure: events meant for the stopped second waited up to its length.
    expect(sse.latency.endToEnd!.max!).toBeGreaterThanOrEqual(STALL_MS * 0.8);
    expect(sse.latency.endToEnd!.p99!).toBeGreaterThanOrEqual(500);
    // ... and not in the server's own stamp, which is taken after the gateway resumed.
    expect(sse.latency.delivery!.max!).toBeLessThan(sse.latency.endToEnd!.max! / 2);
    const judged = result.thresholds.find((t) => t.metric === 'sse.latency_e2e.p99')!;
    expect(judged).toMatchObject({ status: 'fail', actual: sse.latency.endToEnd!.p99 });
    expect(judged.judgedOn).toBeUndefined();
    expect(result.passed).toBe(false);
    // Nothing was lost: the stall delayed every event, it dropped none.
    expect(sse.deliveryTotal.lost).toBe(0);
  }, 120_000);
});
