// Load from several machines: two `fanout load agent` processes (on loopback addresses of
// their own, one with a clock set 4 s ahead) driven by `fanout load sse --agents`, against
// a server that drops known sequence numbers and delays every delivery by a known amount.
// The merged result must hold every connection, count exactly the injected losses, and
// show latencies within a few ms of the injected delay — which it can only do if each
// agent's clock offset was measured and corrected. An agent that dies mid-run makes the
// run INVALID (exit 3) naming it; a wrong token is a set-up failure (exit 4).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startFaultyServer, type FaultyServer } from './fixtures/faulty-sse-server.js';
import type { RunResult } from '../../src/load/result.js';

const FANOUT = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));
const TOKEN = 'agents-test-token-0123456789';
const DELAY_MS = 120;
const SKEW_MS = 4000;

interface Agent {
  proc: ChildProcess;
  address: string;
  log: string[];
}

/** Starts `fanout load agent` on `host` (any free port) and resolves with the address it printed. */
function startAgent(host: string, env: NodeJS.ProcessEnv = {}): Promise<Agent> {
  const proc = spawn(process.execPath, [FANOUT, 'load', 'agent', '--listen', `${host}:0`, '--workers', '1'], {
    env: { ...process.env, FANOUT_AGENT_TOKEN: TOKEN, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log: string[] = [];
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`agent on ${host} exited (${code}): ${log.join('\n')}`)));
    createInterface({ input: proc.stderr! }).on('line', (line) => {
      log.push(line);
      const m = /listening on (\S+)/.exec(line);
      if (m) resolve({ proc, address: m[1]!, log });
    });
  });
}

function stop(agent: Agent | undefined): Promise<void> {
  if (!agent || agent.proc.exitCode !== null || agent.proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    agent.proc.once('exit', () => resolve());
    agent.proc.kill('SIGTERM');
  });
}

function fanout(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [FANOUT, ...args], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, FANOUT_AGENT_TOKEN: TOKEN } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let srv: FaultyServer;
let a: Agent;
let b: Agent;
beforeAll(async () => {
  srv = await startFaultyServer();
  [a, b] = await Promise.all([startAgent('127.0.0.2'), startAgent('127.0.0.3', { FANOUT_SIMULATED_CLOCK_SKEW_MS: String(SKEW_MS) })]);
});
afterEach(() => {
  srv.faults.drop.clear();
  srv.faults.delayMs = 0;
});
afterAll(async () => {
  await Promise.all([stop(a), stop(b)]);
  await srv.close();
});

// The machine is shared: generator limits are loosened except where an agent's loss is the subject.
const run = (agents: string[], extra: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> =>
  fanout(['load', 'sse', '--target', srv.url, '--service-key', 'k', '--path', 'content', '--agents', agents.join(','), '--connections', '12', '--streams', '2', '--rate', '5', '--duration', '4', '--ramp', '0.6', '--json', '--quiet', '--generator-max-lag-ms', '2000', '--generator-max-cpu', '100', ...extra]);

describe('load from two agents', () => {
  it('merges connections, exact loss counts and latencies with each agent’s clock offset corrected', async () => {
    srv.faults.drop.add(3);
    srv.faults.drop.add(7);
    srv.faults.delayMs = DELAY_MS;
    const r = await run([a.address, b.address]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as RunResult;
    expect(result.valid).toBe(true);
    const sse = result.groups.sse!;
    // Every connection, held by the two agents' workers (none ran locally).
    expect(sse.established).toBe(12);
    expect(sse.peakOpen).toBe(12);
    const hosts = result.generator.hosts;
    expect(hosts.map((h) => h.name).sort()).toEqual([`agent ${a.address}`, `agent ${b.address}`].sort());
    for (const h of hosts) expect(h.peakConnections).toBe(6);
    // Clock offsets measured per agent: the skewed one is 4 s ahead, within the measurement's bound.
    const skewed = hosts.find((h) => h.name === `agent ${b.address}`)!;
    expect(Math.abs(skewed.clockOffsetMs - SKEW_MS)).toBeLessThanOrEqual(skewed.clockUncertaintyMs + 2);
    expect(Math.abs(hosts.find((h) => h.name === `agent ${a.address}`)!.clockOffsetMs)).toBeLessThanOrEqual(5);
    // Exact losses: two dropped sequence numbers per stream, seen by each of its 6 subscribers.
    expect(sse.deliveryTotal.lost).toBe(12 * 2);
    expect(sse.deliveryTotal.duplicates).toBe(0);
    // Latency within a few ms of the injected delay on both agents — uncorrected, the skewed
    // agent's 6 connections would read 4 s more (or clamp at 0 and be counted negative).
    expect(sse.negativeLatencies).toBe(0);
    const e2e = sse.latency.endToEnd!;
    expect(e2e.p50!).toBeGreaterThanOrEqual(DELAY_MS);
    expect(e2e.p50!).toBeLessThan(DELAY_MS + 25);
    expect(e2e.max!).toBeLessThan(DELAY_MS + 1000);
    expect(result.notes.join('\n')).toMatch(/clock \+4\d{3}(\.\d+)? ms ± [\d.]+, corrected/);
  }, 150_000);

  it('marks the run INVALID, naming the agent, when an agent dies mid-run', async () => {
    const victim = await startAgent('127.0.0.4');
    try {
      const running = run([a.address, victim.address], ['--duration', '8']);
      // Let the run get going, then kill the agent outright (no goodbye on the wire).
      await new Promise((r) => setTimeout(r, 5000));
      victim.proc.kill('SIGKILL');
      const r = await running;
      expect(r.code, r.stderr).toBe(3);
      const result = JSON.parse(r.stdout) as RunResult;
      expect(result.valid).toBe(false);
      expect(result.generator.reasons.join('\n')).toContain(`agent ${victim.address}`);
      expect(result.aborted?.reason).toContain(`agent ${victim.address}`);
    } finally {
      await stop(victim);
    }
  }, 150_000);

  it('marks the run INVALID naming the agent whose worker lagged beyond the limit', async () => {
    // No generator lags 0 ms: with a limit of 0 the lag check must fail, and say which processes lagged, on which host.
    const r = await run([b.address], ['--duration', '3', '--generator-max-lag-ms', '0', '--generator-max-connecting-lag-ms', '0']);
    expect(r.code, r.stderr).toBe(3);
    const result = JSON.parse(r.stdout) as RunResult;
    expect(result.generator.reasons.join('\n')).toMatch(new RegExp(`generator event-loop lag p99 [\\d.]+ ms .*exceeds 0 ms \\(over the run: .*worker 0 on agent ${b.address.replace(/\./g, '\\.')} p99`));
  }, 60_000);

  it('refuses a coordinator with the wrong token, and the coordinator says so (exit 4)', async () => {
    const r = await fanout(['load', 'sse', '--target', srv.url, '--service-key', 'k', '--agents', a.address, '--agent-token', 'not-the-token-at-all', '--duration', '1', '--quiet']);
    expect(r.code).toBe(4);
    expect(r.stderr.trim()).toBe(`fanout load sse: agent ${a.address} refused this coordinator: the token does not match this agent’s`);
    expect(a.log.join('\n')).toMatch(/refused 127\.0\.0\.1:\d+: the token does not match/);
  }, 60_000);
});
