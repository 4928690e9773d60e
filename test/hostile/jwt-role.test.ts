// Finding 7 of issue 13: the JWT `role` claim was used for `SET ROLE` as it stood, so a
// token signed with the real secret and `role: "postgres"` created a comment as another
// user, as superuser, past RLS; and nothing warned that the gateway logged in as a
// superuser. Now only the allowed roles (anon, authenticated, service_role by default) pass
// authentication, a superuser login role is warned about at start-up, and the README's
// deployment recipe (a dedicated non-superuser login role granted only those roles) works.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { createMigratedDatabase, createTestDatabase, POSTGRES_ADMIN_URL, type TestDatabase } from '../helpers/database.js';
import { openDatabase } from '../../src/changes/database.js';
import { migrate } from '../../src/changes/schema.js';
import { createLogger } from '../../src/core/log.js';
import { refusedUpgrade, waitFor } from '../realtime/helpers.js';

/** A gateway whose log lines (JSON) are kept, to read its start-up warnings. */
async function loggedGateway(databaseUrl: string): Promise<{ gw: TestGateway; lines: () => { msg: string; level: number }[] }> {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const gw = await startGateway({ databaseUrl, dbStart: 'eager' }, { logger: createLogger({ level: 'info', pretty: false, destination }) });
  const lines = (): { msg: string; level: number }[] =>
    chunks
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg: string; level: number });
  await waitFor(() => lines().some((l) => l.msg === 'change feed running'), 'the change feed to start', 30_000);
  return { gw, lines };
}

async function postComment(gw: TestGateway, token: string, userId: string): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  const res = await fetch(`${gw.url}/api/projects/p1/comments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ body: 'forged', user_id: userId }),
  });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
}

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

describe('JWT roles and the database login role (finding 7)', () => {
  let db: TestDatabase;
  let superGw: { gw: TestGateway; lines: () => { msg: string; level: number }[] };
  beforeAll(async () => {
    db = await createMigratedDatabase('fanout_roles');
    superGw = await loggedGateway(db.url); // the test server's `postgres` user is a superuser
  });
  afterAll(async () => {
    await superGw?.gw.stop();
    await db?.drop();
  });

  it('refuses a token naming a role outside the allow-list at authentication: no comment is written', async () => {
    const { gw } = superGw;
    const forged = await gw.gateway.auth.sign({ sub: 'mallory', role: 'postgres' });
    const res = await postComment(gw, forged, 'alice');
    expect(res.status).toBe(401);
    expect(res.body.error).toEqual({ code: 'role_not_allowed', message: 'The role "postgres" in the JWT is not allowed (allowed: anon, authenticated, service_role)' });
    const refused = await refusedUpgrade(`${gw.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${forged}&vsn=2.0.0`);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body).error).toContain('The role "postgres" in the JWT is not allowed');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const { rows } = await c.query(`select count(*)::int as n from public.project_comments where body = 'forged'`);
    await c.end();
    expect(rows[0].n).toBe(0);
    // An allowed role still goes through RLS: a user cannot write as another.
    expect((await postComment(gw, await gw.userToken('mallory'), 'alice')).status).toBe(403);
    expect((await postComment(gw, await gw.userToken('alice'), 'alice')).status).toBe(201);
  });

  it('warns at start-up that the gateway logs in as a superuser', () => {
    const warning = superGw.lines().find((l) => l.msg.includes('connects to PostgreSQL as superuser'));
    expect(warning?.level).toBe(40);
    expect(warning?.msg).toContain('superuser "postgres"');
  });

  it('runs on the README\'s dedicated non-superuser login role without the warning', async () => {
    const role = `fanout_gw_${randomBytes(4).toString('hex')}`;
    const fresh = await createTestDatabase('fanout_login_role');
    let gw: TestGateway | undefined;
    try {
      // The README's recipe (deployment section), as the superuser.
      await admin(`create role ${role} login password 'pw' nosuperuser nocreatedb nocreaterole noinherit`);
      await admin(`do $$ begin
        if not exists (select 1 from pg_roles where rolname = 'anon') then create role anon nologin noinherit; end if;
        if not exists (select 1 from pg_roles where rolname = 'authenticated') then create role authenticated nologin noinherit; end if;
        if not exists (select 1 from pg_roles where rolname = 'service_role') then create role service_role nologin noinherit bypassrls; end if;
      end $$`);
      await admin(`grant anon, authenticated, service_role to ${role}`);
      await admin(`alter database ${fresh.name} owner to ${role}`);
      const inDb = new pg.Client({ connectionString: fresh.url });
      await inDb.connect();
      await inDb.query(`grant usage, create on schema public to ${role}`).finally(() => inDb.end());
      const url = new URL(fresh.url);
      url.username = role;
      url.password = 'pw';
      const handle = await openDatabase({ databaseUrl: url.toString(), dataDir: '/nonexistent', log: createLogger({ level: 'silent' }) });
      await migrate(handle).finally(() => handle.close());
      const logged = await loggedGateway(url.toString());
      gw = logged.gw;
      expect(logged.lines().filter((l) => l.msg.includes('superuser'))).toEqual([]);
      expect((await postComment(gw, await gw.userToken('alice'), 'alice')).status).toBe(201);
      expect((await postComment(gw, await gw.userToken('mallory'), 'alice')).status).toBe(403);
    } finally {
      await gw?.stop();
      await fresh.drop();
      await admin(`drop role if exists ${role}`).catch(() => undefined);
    }
  });
});
