import { afterEach, describe, expect, it } from 'vitest';
import { TEST_SECRET, modulesWithDatabase, modulesWithout, startGateway, type TestGateway } from '../helpers/gateway.js';
import type { DatabaseServices } from '../../src/changes/types.js';
import { ReadinessChecks } from '../../src/server/readiness.js';
import type { ManagedConnection } from '../../src/server/connections.js';
import { FeedClient, waitFor } from './helpers.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createTestDatabase } from '../helpers/database.js';
import { cleanBus, freePort, randomPrefix } from '../bus/helpers.js';

const FANOUT = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

interface ReadyBody {
  status?: string;
  error?: { code: string; message: string };
  checks: { name: string; ready: boolean; detail?: string }[];
}

async function readyz(url: string): Promise<{ status: number; body: ReadyBody }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as ReadyBody };
}

/** A change feed whose readiness the test controls (for states a real database cannot be held in). */
function fakeDatabase(): DatabaseServices & { setReady(v: boolean): void } {
  let ready = false;
  return {
    changeFeed: {
      get ready() {
        return ready;
      },
      subscribe: () => Promise.resolve({ ok: false, error: 'not in this test' }),
      connect: () => Promise.resolve(),
      close: () => Promise.resolve(),
    },
    authorizer: { canRead: () => Promise.resolve({ broadcastRead: false, presenceRead: false }), canWrite: () => Promise.resolve(false) },
    archive: { replay: () => Promise.resolve([]) },
    setReady(v) {
      ready = v;
    },
  };
}

describe('/healthz and /readyz', () => {
  it('is alive and ready with no database module and the in-memory bus', async () => {
    gw = await startGateway({}, { modules: modulesWithout('changes') });
    const health = await fetch(`${gw.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', pid: process.pid });
    const { status, body } = await readyz(gw.url);
    expect(status).toBe(200);
    expect(body.checks).toEqual(
      expect.arrayContaining([
        { name: 'database', ready: true, detail: 'not configured' },
        { name: 'bus', ready: true, detail: 'in-memory' },
        { name: 'accepting', ready: true },
      ]),
    );
  });

  it('follows the real change feed: 503 while PostgreSQL lacks the schema, ready once it is migrated', async () => {
    const db = await createTestDatabase('fanout_monitor');
    try {
      gw = await startGateway({ databaseUrl: db.url, dbStart: 'eager' });
      // Not ready while it opens, and then with the reason the open failed.
      expect((await readyz(gw.url)).status).toBe(503);
      const down = await waitFor('the failed start to show', async () => {
        const r = await readyz(gw!.url);
        return r.status === 503 && r.body.error?.message.includes('migrate') ? r : undefined;
      });
      expect(down.body.error?.message).toMatch(/^not ready: database \(change feed is not connected to its database: .*does not have Fanout's realtime schema: run `fanout migrate`/);
      // `fanout migrate`, as an operator would run it; the gateway retries on its own.
      const migrate = spawnSync(process.execPath, [FANOUT, 'migrate', '--database-url', db.url], { encoding: 'utf8', env: { ...process.env, FANOUT_JWT_SECRET: TEST_SECRET } });
      expect(migrate.status, migrate.stderr).toBe(0);
      const up = await waitFor('the change feed to connect', async () => {
        const r = await readyz(gw!.url);
        return r.status === 200 ? r : undefined;
      }, 20_000, 200);
      expect(up.body.checks).toContainEqual({ name: 'database', ready: true, detail: 'change feed connected' });
    } finally {
      await gw?.stop();
      gw = undefined;
      await db.drop();
    }
  });

  it('is not ready until the change feed is connected, and says so', async () => {
    const db = fakeDatabase();
    gw = await startGateway({}, { modules: modulesWithDatabase(() => db) });
    const down = await readyz(gw.url);
    expect(down.status).toBe(503);
    expect(down.body.error).toEqual({ code: 'not_ready', message: 'not ready: database (change feed is not connected to its database)' });
    expect(down.body.checks.find((c) => c.name === 'database')?.ready).toBe(false);
    // Liveness is unaffected: the process is fine, a dependency is not.
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    db.setReady(true);
    expect((await readyz(gw.url)).status).toBe(200);
  });

  it('is not ready while its Redis bus is unreachable, and ready once it is connected', async () => {
    gw = await startGateway({ bus: 'redis', redisUrl: `redis://127.0.0.1:${await freePort()}`, busPrefix: randomPrefix() });
    const down = await readyz(gw.url);
    expect(down.status).toBe(503);
    expect(down.body.error?.message).toMatch(/^not ready: bus \(redis node \w+: not connected to redis:\/\/127\.0\.0\.1:\d+/);
    await gw.stop();
    const prefix = randomPrefix();
    gw = await startGateway({ bus: 'redis', busPrefix: prefix });
    expect((await readyz(gw.url)).status).toBe(200);
    await gw.stop();
    gw = undefined;
    await cleanBus('redis', prefix);
  });

  it('turns not ready while draining, before the last connection has left', async () => {
    gw = await startGateway({ drainTimeoutMs: 2000 });
    const { gateway } = gw;
    // A connection that takes its time to leave keeps the drain open.
    const conn: ManagedConnection = { id: 'slow', transport: 'sse', userKey: 'u', openedAt: Date.now(), close: () => void setTimeout(() => gateway.connections.remove(conn), 300) };
    gateway.connections.add(conn);
    const closing = gateway.close();
    const report = await gateway.readiness.evaluate();
    expect(report.ready).toBe(false);
    expect(report.checks.find((c) => c.name === 'accepting')).toEqual({ name: 'accepting', ready: false, detail: 'draining for shutdown' });
    await closing;
  });

  it('lets a dashboard feed count as a connection and still answer probes', async () => {
    gw = await startGateway();
    const feed = await FeedClient.open(`${gw.url}/dashboard/feed`, { authorization: `Bearer ${gw.keys.service_role}` });
    expect(feed.status).toBe(200);
    expect((await readyz(gw.url)).status).toBe(200);
    feed.close();
  });
});

describe('ReadinessChecks', () => {
  it('fails a check that throws or misses its deadline, naming why, without waiting for it', async () => {
    const checks = new ReadinessChecks(100);
    checks.set('ok', () => true);
    checks.set('throws', () => {
      throw new Error('connection refused');
    });
    checks.set('hangs', () => new Promise<boolean>(() => undefined));
    checks.setDefault('ok', () => false); // a default never replaces a registered check
    const started = Date.now();
    const report = await checks.evaluate();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(report.ready).toBe(false);
    expect(report.checks).toEqual([
      { name: 'ok', ready: true },
      { name: 'throws', ready: false, detail: 'check failed: connection refused' },
      { name: 'hangs', ready: false, detail: 'check did not answer within 100 ms' },
    ]);
  });
});
