// What the multi-process benches share: gateway processes started as `fanout serve` (from
// this checkout, or from another one, for a baseline of older code in the same run),
// POSTs over a keep-alive agent, raw SSE streams that check each event's seq, and a
// process's CPU time read from /proc. BENCH_NODE_ARGS adds Node flags to every gateway process
// (e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile them).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BENCH_JWT_SECRET } from './bench-gateway-config.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface GatewayProcess {
  url: string;
  proc: ChildProcess;
  dir: string;
}

/** Starts `fanout serve` from `root` (this checkout by default) and resolves once it listens. */
export function startGatewayProcess(extra: string[], root = ROOT): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-bench-node-'));
  const proc = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), `${root}/bin/fanout.js`, 'serve', '--port', '0', '--data-dir', dir, '--log-level', 'info', '--max-connections-per-user', '100000', '--db-start', 'lazy', ...extra], {
    cwd: root,
    env: { ...process.env, FANOUT_JWT_SECRET: BENCH_JWT_SECRET },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    proc.on('exit', (code) => reject(new Error(`gateway exited (${code}) before listening`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'gateway listening' && entry.url) resolve({ url: entry.url, proc, dir });
      } catch {
        // not JSON
      }
    });
  });
}

export async function stopGatewayProcess(n: GatewayProcess): Promise<void> {
  if (n.proc.exitCode === null) {
    const exited = new Promise((r) => n.proc.once('exit', r));
    n.proc.kill('SIGTERM');
    await exited;
  }
  rmSync(n.dir, { recursive: true, force: true });
}

export const agent = new Agent({ keepAlive: true, maxSockets: 32 });

export function post(url: string, token: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** What a stream reports: each progress event's data at its receipt time, and seq breaks. */
export interface StreamTally {
  event(data: Record<string, unknown> & { seq: number; ts: number }, receivedAt: number): void;
  lost(count: number): void;
  duplicate(): void;
}

/** Opens one raw SSE stream; resolves with a closer once the stream is `ready`. */
export function openStream(url: string, token: string, tally: () => StreamTally): Promise<() => void> {
  return new Promise((resolve, reject) => {
    let lastSeq = -1;
    let buf = '';
    const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`stream answered ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const now = Date.now();
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const lines = block.split('\n');
          const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
          if (event === 'ready') resolve(() => req.destroy());
          if (event !== 'progress') continue;
          const line = lines.find((l) => l.startsWith('data: '));
          if (!line) continue;
          const d = JSON.parse(line.slice(6)) as Record<string, unknown> & { seq: number; ts: number };
          const t = tally();
          t.event(d, now);
          if (lastSeq >= 0 && d.seq <= lastSeq) t.duplicate();
          else if (lastSeq >= 0 && d.seq > lastSeq + 1) t.lost(d.seq - lastSeq - 1);
          lastSeq = Math.max(lastSeq, d.seq);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A process's user + system CPU seconds so far (Linux /proc). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The sum of a counter's series on a gateway's /metrics (0 when it has none). */
export async function scrapeCounter(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
