// `fanout serve --workers 2`: two gateway processes on one port, joined by the Redis bus.
// Connections are spread over both; a worker killed with SIGKILL is restarted and its
// clients resume on the other without losing or repeating an event; SIGTERM to the
// primary drains every worker and ends the whole group. And `--workers` with the
// in-process bus is refused with a message that says which bus to start.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Auth } from '../../src/core/auth.js';
import { TEST_SECRET } from '../helpers/gateway.js';
import { spawnServe, type ServeProcess } from '../helpers/serve-process.js';
import { createMigratedDatabase, type TestDatabase } from '../helpers/database.js';
import { http, openClient, seqs, waitFor, type Client } from '../sse/helpers.js';
import { cleanBus, randomPrefix, REDIS_URL } from './helpers.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function workerPids(url: string, want: number): Promise<Set<number>> {
  const pids = new Set<number>();
  // The primary hands connections to the workers in turn; fresh connections reach each of them.
  for (let i = 0; i < 40 && pids.size < want; i++) {
    const r = await fetch(`${url}/healthz`, { headers: { connection: 'close' } });
    pids.add(((await r.json()) as { pid: number }).pid);
  }
  return pids;
}

describe('fanout serve --workers 2 on the Redis bus', () => {
  const prefix = randomPrefix();
  const dataDir = mkdtempSync(join(tmpdir(), 'fanout-workers-'));
  let db: TestDatabase;
  let child: ServeProcess;
  let service: string;
  beforeAll(async () => {
    db = await createMigratedDatabase();
    child = await spawnServe(['--workers', '2', '--bus', 'redis', '--redis-url', REDIS_URL, '--bus-prefix', prefix, '--database-url', db.url, '--db-start', 'lazy', '--drain-timeout-ms', '2000'], dataDir);
    service = (await new Auth(TEST_SECRET).projectKeys()).service_role;
  }, 60_000);
  afterAll(async () => {
    if (child && child.proc.exitCode === null) child.proc.kill('SIGKILL');
    await cleanBus('redis', prefix);
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  it('spreads connections over both workers, survives one being killed, and drains all on SIGTERM', async () => {
    const pids = await workerPids(child.url, 2);
    expect(pids.size).toBe(2);
    const user = 'workers-user';
    const streams: Client[] = [];
    for (let i = 0; i < 6; i++) streams.push(openClient(`${child.url}/v1/stream?topic=user:${user}`, service));
    await waitFor(() => streams.every((s) => s.of('ready').length === 1), 'six streams ready');
    let published = 0;
    const publish = async () => {
      const r = await http('POST', `${child.url}/api/content/workers-item/progress`, { token: service, body: { progress: ++published % 100, userId: user } });
      expect([200, 201]).toContain(r.status);
    };
    for (let i = 0; i < 5; i++) await publish();
    await waitFor(() => streams.every((s) => s.of('progress').length === 5), 'five events on every stream');

    // SIGKILL one worker: its streams reconnect (to the other worker, or to its replacement) and resume.
    const [victim] = [...pids];
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => !alive(victim!), 'the worker to die');
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 50));
      await publish().catch(async () => {
        // A publish that landed on the dead worker's socket fails; the client retries, as a real one would.
        published--;
        await publish();
      });
    }
    await waitFor(() => streams.every((s) => s.of('progress').length === published), 'every event on every stream after the kill', 20_000);
    for (const s of streams) expect(seqs(s.of('progress'))).toEqual(Array.from({ length: published }, (_, i) => i + 1));
    expect(streams.some((s) => s.opens > 1)).toBe(true);
    // The primary started a replacement.
    const after = await workerPids(child.url, 2);
    expect(after.size).toBe(2);
    expect(after.has(victim!)).toBe(false);

    // SIGTERM to the primary: every worker drains and the group exits 0.
    const workers = [...after];
    child.proc.kill('SIGTERM');
    const { code } = await child.exited;
    expect(code).toBe(0);
    for (const pid of workers) expect(alive(pid)).toBe(false);
    for (const s of streams) s.close();
  }, 90_000);
});

it('refuses --workers with the in-process bus, naming the bus to start', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fanout-workers-'));
  try {
    const proc = spawn(process.execPath, ['bin/fanout.js', 'serve', '--workers', '2', '--port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/--workers 2 needs a bus the workers share: start Redis .* --bus redis/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 30_000);
