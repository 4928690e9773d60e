// `fanout migrate` on PostgreSQL and PGlite: installs the schema, is idempotent, survives
// two migrations racing, refuses an embedded database another process has open, and the
// gateway refuses to run on a PostgreSQL database that was never migrated.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startGateway } from '../helpers/gateway.js';
import { openDatabase, type Database } from '../../src/changes/database.js';
import { LATEST_VERSION, MIGRATIONS, migrate, schemaVersion } from '../../src/changes/schema.js';

const ALL_VERSIONS = MIGRATIONS.map((m) => ({ version: m.version }));
import { createLogger } from '../../src/core/log.js';

const run = promisify(execFile);
const log = createLogger({ level: 'silent' });

async function fanout(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/fanout.js', ...args], { env: { ...process.env, FANOUT_LOG_LEVEL: 'warn' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function asAnon(db: Database, sql: string): Promise<unknown> {
  return db.transaction(async (tx) => {
    await tx.query('set local role anon');
    return tx.query(sql);
  });
}

describe('fanout migrate', () => {
  const dirs: string[] = [];
  const dbs: TestDatabase[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'fanout-migrate-'));
    dirs.push(d);
    return d;
  };
  let fresh: TestDatabase;
  beforeAll(async () => {
    fresh = await createTestDatabase('fanout_migrate');
    dbs.push(fresh);
  });
  afterAll(async () => {
    for (const db of dbs) await db.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('installs the schema in PostgreSQL and is a no-op the second time', async () => {
    const first = await fanout('migrate', '--database-url', fresh.url, '--json');
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ database: 'postgres', applied: ALL_VERSIONS, version: LATEST_VERSION });
    const second = await fanout('migrate', '--database-url', fresh.url, '--json');
    expect(JSON.parse(second.stdout)).toMatchObject({ applied: [], version: LATEST_VERSION });

    const db = await openDatabase({ databaseUrl: fresh.url, dataDir: tempDir(), log });
    try {
      const { rows } = await db.query<{ tables: string[]; pub: boolean; fn: boolean }>(
        `select array(select tablename::text from pg_publication_tables where pubname = 'supabase_realtime' order by 1) as tables,
                exists (select 1 from pg_publication where pubname = 'supabase_realtime') as pub,
                to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null as fn`,
      );
      expect(rows[0]).toEqual({ tables: ['project_comments'], pub: true, fn: true });
      const cols = await db.query<{ c: string }>(`select column_name as c from information_schema.columns where table_name = 'project_comments' order by ordinal_position`);
      expect(cols.rows.map((r) => r.c)).toEqual(['id', 'project_id', 'user_id', 'body', 'created_at', 'updated_at']);
      // The role-switching helpers are the gateway's alone: an API role calling them could claim any role.
      for (const call of [
        `select realtime.fanout_comment('list', '{"role":"service_role"}', 'p', null, null, null, 10)`,
        `select realtime.fanout_channel_access('t', 'service_role', '{}', array['broadcast'], 'read')`,
        `select * from realtime.fanout_visible_keys('public.project_comments', array['id'], '[]')`,
      ]) {
        await expect(asAnon(db, call)).rejects.toThrow(/permission denied for function/);
      }
      await expect(asAnon(db, `select realtime.send('{}'::jsonb, 'e', 't', false)`)).resolves.toBeDefined();
    } finally {
      await db.close();
    }
  });

  it('lets two processes migrate one database at the same time', async () => {
    const target = await createTestDatabase('fanout_migrate');
    dbs.push(target);
    const open = () => openDatabase({ databaseUrl: target.url, dataDir: tempDir(), log });
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const results = await Promise.all([migrate(a), migrate(b)]);
      // Each migration is applied exactly once, by one process or the other.
      expect(results.flatMap((r) => r.applied.map((m) => m.version)).sort()).toEqual(MIGRATIONS.map((m) => m.version));
      expect(await schemaVersion(a)).toBe(LATEST_VERSION);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('reports a database it cannot reach without printing the password', async () => {
    const r = await fanout('migrate', '--database-url', 'postgres://someone:hunter2@127.0.0.1:1/nowhere');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^fanout migrate: cannot connect to PostgreSQL at postgres:\/\/someone:\*\*\*@127\.0\.0\.1:1\/nowhere/);
    expect(r.stderr).not.toContain('hunter2');
  });

  it('migrates the embedded database, and refuses one a running gateway holds', async () => {
    const dataDir = tempDir();
    const first = await fanout('migrate', '--data-dir', dataDir, '--json');
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ database: 'pglite', applied: ALL_VERSIONS });

    const gw = await startGateway({ dataDir, dbStart: 'eager' });
    try {
      await gw.gateway.service('databaseRuntime').parts();
      const busy = await fanout('migrate', '--data-dir', dataDir);
      expect(busy.code).toBe(4);
      expect(busy.stderr).toMatch(/in use by process \d+/);
    } finally {
      await gw.stop();
    }
    const after = await fanout('migrate', '--data-dir', dataDir, '--json');
    expect(JSON.parse(after.stdout)).toMatchObject({ applied: [] });
  });

  it('keeps a gateway on an unmigrated PostgreSQL database unready, with a message that says what to do', async () => {
    const bare = await createTestDatabase('fanout_migrate');
    dbs.push(bare);
    const gw = await startGateway({ databaseUrl: bare.url, dbStart: 'eager' });
    try {
      const runtime = gw.gateway.service('databaseRuntime');
      await expect(runtime.parts()).rejects.toThrow(/does not have Fanout's realtime schema: run `fanout migrate`/);
      expect(gw.gateway.service('database').changeFeed.ready).toBe(false);
      const anon = await gw.gateway.auth.verify(gw.keys.anon);
      const r = await gw.gateway.service('database').changeFeed.subscribe({ channel: 'x', claims: anon, bindings: [{ id: 1, params: { schema: 'public' } }], deliver: () => undefined });
      expect(r).toEqual({ ok: false, error: 'Realtime was unable to connect to the project database' });
      const res = await fetch(`${gw.url}/api/projects/p/comments`, { headers: { apikey: gw.keys.anon } });
      expect(res.status).toBe(503);
    } finally {
      await gw.stop();
    }
  });
});
