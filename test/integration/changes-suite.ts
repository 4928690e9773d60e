// The change feed against a real database, run for PostgreSQL and for PGlite by
// changes-postgres.test.ts and changes-pglite.test.ts. Subscriptions go through the
// gateway's ChangeFeed (the contract the Realtime channels use); writes are plain SQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangesHarness, eventually, type DatabaseKind, type Delivery, type HarnessOptions } from '../helpers/changes.js';
import { channelTopic } from '../../src/realtime/channel-topics.js';
import type { HubMessage } from '../../src/core/hub.js';
import type { Claims } from '../../src/core/auth.js';
import { ITEMS, OPERATOR_CASES, SETUP } from './changes-fixtures.js';


/** `options` is read when the suite starts (a WAL test server is up by then). */
export function changeFeedSuite(kind: DatabaseKind, options: () => HarnessOptions = () => ({})): void {
  let h: ChangesHarness;
  let anon: Claims;
  let service: Claims;
  let user1: Claims;
  let user2: Claims;

  beforeAll(async () => {
    h = await ChangesHarness.create(kind, options());
    await h.start();
    await h.exec(SETUP);
    anon = await h.claims(h.gw!.keys.anon);
    service = await h.claims(h.gw!.keys.service_role);
    user1 = await h.claims(await h.gw!.userToken('u1'));
    user2 = await h.claims(await h.gw!.userToken('u2'));
  });
  afterAll(async () => {
    await h?.close();
  });

  const recordIds = (got: Delivery[]) => got.map((d) => Number(d.data.record?.id ?? d.data.old_record?.id)).sort((a, b) => a - b);

  describe('payloads', () => {
    it('delivers INSERT, UPDATE and DELETE shaped as Supabase does', async () => {
      const { result, got } = await h.subscribe([{ event: '*', schema: 'public', table: 'items', filter: 'project_id=eq.shape' }], anon);
      expect(result.ok).toBe(true);
      const before = Date.now();
      await h.sql(`insert into public.items (id, name, qty, price, flag, created, doc, project_id) values (100, 'x', 1, 2.5, true, '2024-01-01T00:00:00Z', '{"k":[1]}', 'shape')`);
      await h.sql(`update public.items set name = 'y' where id = 100`);
      await h.sql(`delete from public.items where id = 100`);
      await eventually(() => expect(got).toHaveLength(3));
      const [ins, upd, del] = got as [Delivery, Delivery, Delivery];
      expect(ins.ids).toEqual([100]);
      expect(ins.data).toMatchObject({ schema: 'public', table: 'items', type: 'INSERT', errors: null });
      expect(ins.data.record).toEqual({ id: 100, name: 'x', qty: 1, price: 2.5, flag: true, created: '2024-01-01T00:00:00+00:00', code: null, mood: null, doc: { k: [1] }, project_id: 'shape' });
      expect(ins.data).not.toHaveProperty('old_record');
      expect(ins.data.columns).toEqual([
        { name: 'id', type: 'int8' },
        { name: 'name', type: 'text' },
        { name: 'qty', type: 'int4' },
        { name: 'price', type: 'numeric' },
        { name: 'flag', type: 'bool' },
        { name: 'created', type: 'timestamptz' },
        { name: 'code', type: 'bpchar' },
        { name: 'mood', type: 'mood' },
        { name: 'doc', type: 'jsonb' },
        { name: 'project_id', type: 'text' },
      ]);
      expect(ins.data.commit_timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Date.parse(ins.data.commit_timestamp)).toBeGreaterThanOrEqual(before - 1000);
      expect(Date.parse(ins.data.commit_timestamp)).toBeLessThanOrEqual(Date.now());
      expect(upd.data.type).toBe('UPDATE');
      expect(upd.data.record).toMatchObject({ id: 100, name: 'y' });
      expect(upd.data.old_record).toMatchObject({ id: 100, name: 'x' }); // REPLICA IDENTITY FULL, no RLS: the whole old row
      expect(del.data.type).toBe('DELETE');
      expect(del.data).not.toHaveProperty('record');
      expect(del.data.old_record).toMatchObject({ id: 100, name: 'y', project_id: 'shape' });
    });

    it('reports only the primary key of old rows without REPLICA IDENTITY FULL', async () => {
      const { got } = await h.subscribe([{ event: '*', schema: 'public', table: 'plain' }], anon);
      await h.sql(`insert into public.plain values (1, 'a', 'b', 's')`);
      await h.sql(`update public.plain set a = 'a2' where id = 1`);
      await h.sql(`delete from public.plain where id = 1`);
      await eventually(() => expect(got).toHaveLength(3));
      expect(got[1]!.data.old_record).toEqual({ id: 1 });
      expect(got[2]!.data.old_record).toEqual({ id: 1 });
    });

    it('shows a role only the columns it may SELECT, and select narrows to the named columns plus the key', async () => {
      const all = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'plain' }], anon);
      const some = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'plain', select: ['a'] }], anon);
      await h.sql(`insert into public.plain values (2, 'a', 'b', 'top secret')`);
      await eventually(() => expect(some.got).toHaveLength(1));
      await eventually(() => expect(all.got).toHaveLength(1));
      expect(all.got[0]!.data.record).toEqual({ id: 2, a: 'a', b: 'b' });
      expect(all.got[0]!.data.columns!.map((c) => c.name)).toEqual(['id', 'a', 'b']);
      expect(some.got[0]!.data.record).toEqual({ id: 2, a: 'a' });
      expect(some.got[0]!.data.columns!.map((c) => c.name)).toEqual(['id', 'a']);
    });

    it('answers a table without a primary key with Error 400', async () => {
      const { got } = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'nokey' }], anon);
      await h.sql(`insert into public.nokey values (1, 'x')`);
      await eventually(() => expect(got).toHaveLength(1));
      expect(got[0]!.data).toMatchObject({ type: 'INSERT', errors: ['Error 400: Bad Request, no primary key'] });
      expect(got[0]!.data).not.toHaveProperty('record');
    });

    it('keeps only small values of an oversized change and says Error 413', async () => {
      const { got } = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'items', filter: 'project_id=eq.big' }], anon);
      await h.sql(`insert into public.items (id, name, qty, project_id) values (200, repeat('x', 1100000), 3, 'big')`);
      await eventually(() => expect(got).toHaveLength(1));
      expect(got[0]!.data.errors).toEqual(['Error 413: Payload Too Large']);
      expect(got[0]!.data.record).toMatchObject({ id: 200, qty: 3, project_id: 'big' });
      expect(got[0]!.data.record).not.toHaveProperty('name');
    });

    it('sends one message per channel with every matching binding id, and respects the event', async () => {
      const { got } = await h.subscribe(
        [
          { event: 'INSERT', schema: 'public', table: 'items', filter: 'project_id=eq.multi' },
          { event: '*', schema: 'public', table: 'items', filter: 'qty=gt.40' },
          { event: 'UPDATE', schema: 'public', table: 'items' },
          { event: '*', schema: 'public' },
        ],
        anon,
      );
      await h.sql(`insert into public.items (id, qty, project_id) values (300, 50, 'multi')`);
      await h.sql(`update public.items set qty = 1 where id = 300`);
      await eventually(() => expect(got).toHaveLength(2));
      expect(got[0]!.data.type).toBe('INSERT');
      expect(got[0]!.ids.sort()).toEqual([100, 101, 103]);
      expect(got[1]!.data.type).toBe('UPDATE');
      expect(got[1]!.ids.sort()).toEqual([102, 103]); // qty is 1 now: the qty>40 binding no longer matches
    });
  });

  describe('filters', () => {
    it('delivers exactly the rows each operator selects, as PostgreSQL evaluates it', async () => {
      const subs = await Promise.all(OPERATOR_CASES.map(([filter]) => h.subscribe([{ event: 'INSERT', schema: 'public', table: 'items', filter }], anon)));
      for (const [i, s] of subs.entries()) expect(s.result, OPERATOR_CASES[i]![0]).toMatchObject({ ok: true });
      await h.sql(ITEMS);
      await h.settle();
      for (const [i, [filter, where]] of OPERATOR_CASES.entries()) {
        const [truth] = await h.sql<{ ids: string[] }>(`select coalesce(array_agg(id::text order by id), '{}') as ids from public.items where id <= 6 and (${where})`);
        expect(recordIds(subs[i]!.got), `${filter} ~ ${where}`).toEqual(truth!.ids.map(Number));
      }
      await h.sql('delete from public.items where id <= 6');
      for (const s of subs) s.subscription!.unsubscribe();
    });

    it('reports filter problems with Supabase texts and leaves other subscriptions alone', async () => {
      const sub = async (filter: string, table = 'items') => {
        const r = await h.subscribe([{ event: '*', schema: 'public', table, filter }], anon);
        return r.result.ok ? 'ok' : r.result.error;
      };
      expect(await sub('id=foo.1')).toBe('Error parsing `filter` params: ["foo", "1"]');
      expect(await sub('nope=eq.1')).toBe(
        'Unable to subscribe to changes with given parameters. An exception happened so please check your connect parameters: [event: *, schema: public, table: items, filters: [{"nope", "eq", "1", false}], select: nil]. Exception: ERROR P0001 (raise_exception) invalid column for filter nope',
      );
      expect(await sub('qty=eq.ten')).toMatch(/Exception: ERROR 22P02 \(invalid_text_representation\) invalid input syntax for type integer: "ten"$/);
      expect(await sub('qty=is.true')).toMatch(/is true filter requires a boolean column, got integer$/);
      expect(await sub('qty=like.1%')).toMatch(/operator like requires a text-compatible column type, got integer$/);
      expect(await sub('name=match.(')).toMatch(/invalid regular expression for match filter/);
      expect(await sub(`id=in.(${Array.from({ length: 101 }, (_, i) => i).join(',')})`)).toMatch(/too many values for `in` filter. Maximum 100$/);
      expect(await sub('id=eq.1', 'unpublished')).toBe(
        'Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: [event: *, schema: public, table: unpublished, filters: [{"id", "eq", "1", false}], select: nil]',
      );
      expect(await sub('secret=eq.x', 'plain')).toMatch(/invalid column for filter secret$/); // anon may not read it
    });

    it('costs work in proportion to matching subscribers: an equality filter is a lookup', async () => {
      const { dispatcher } = await h.parts();
      const subs = await Promise.all(Array.from({ length: 300 }, (_, i) => h.subscribe([{ event: '*', schema: 'public', table: 'items', filter: `project_id=eq.scale-${i}` }], anon)));
      const before = { ...dispatcher.stats };
      await h.sql(`insert into public.items (id, project_id) values (400, 'scale-123')`);
      await h.settle();
      expect(subs[123]!.got).toHaveLength(1);
      expect(subs.filter((s) => s.got.length > 0)).toHaveLength(1);
      expect(dispatcher.stats.changes - before.changes).toBe(1);
      // Only subscriptions without an equality filter (left over from other tests) and the match are candidates.
      expect(dispatcher.stats.candidates - before.candidates).toBeLessThan(20);
      for (const s of subs) s.subscription!.unsubscribe();
    });
  });

  describe('row-level security', () => {
    it('delivers to each subscriber only the rows its claims may SELECT', async () => {
      const u1 = await h.subscribe([{ event: '*', schema: 'public', table: 'notes' }], user1);
      const u2 = await h.subscribe([{ event: '*', schema: 'public', table: 'notes' }], user2);
      const sr = await h.subscribe([{ event: '*', schema: 'public', table: 'notes' }], service);
      const an = await h.subscribe([{ event: '*', schema: 'public', table: 'notes' }], anon);
      await h.sql(`insert into public.notes values (1, 'u1', 'one'), (2, 'u2', 'two')`);
      await h.settle();
      expect(recordIds(u1.got)).toEqual([1]);
      expect(recordIds(u2.got)).toEqual([2]);
      expect(recordIds(sr.got)).toEqual([1, 2]);
      // anon has no SELECT on notes at all: Supabase tells it so.
      expect(an.got.map((d) => d.data.errors)).toEqual([['Error 401: Unauthorized'], ['Error 401: Unauthorized']]);
      // DELETE is not RLS-checked (the row is gone); everyone gets the primary key only.
      await h.sql(`delete from public.notes where id = 1`);
      await h.settle();
      expect(u2.got.at(-1)!.data).toMatchObject({ type: 'DELETE', old_record: { id: 1 } });
      expect(u1.got.at(-1)!.data).toMatchObject({ type: 'DELETE', old_record: { id: 1 } });
      for (const s of [u1, u2, sr, an]) s.subscription!.unsubscribe();
    });

    it('checks RLS once per distinct claims, not once per subscriber, and not at all without RLS', async () => {
      const { dispatcher } = await h.parts();
      const same = await Promise.all(Array.from({ length: 25 }, () => h.subscribe([{ event: 'INSERT', schema: 'public', table: 'notes' }], user1)));
      const other = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'notes' }], user2);
      const before = { ...dispatcher.stats };
      await h.sql(`insert into public.notes values (10, 'u1', 'x')`);
      await h.settle();
      expect(same.every((s) => s.got.length === 1)).toBe(true);
      expect(other.got).toHaveLength(0);
      expect(dispatcher.stats.rlsQueries - before.rlsQueries).toBe(1);
      expect(dispatcher.stats.rlsChecks - before.rlsChecks).toBe(2);
      const mid = { ...dispatcher.stats };
      const items = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'items', filter: 'project_id=eq.norls' }], user1);
      await h.sql(`insert into public.items (id, project_id) values (500, 'norls')`);
      await h.settle();
      expect(items.got).toHaveLength(1);
      expect(dispatcher.stats.rlsQueries - mid.rlsQueries).toBe(0);
      for (const s of [...same, other, items]) s.subscription!.unsubscribe();
    });

    it('re-evaluates with new claims after an access-token refresh', async () => {
      const s = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'notes' }], user1);
      await h.sql(`insert into public.notes values (20, 'u2', 'for u2')`);
      await h.settle();
      expect(s.got).toHaveLength(0);
      s.subscription!.updateClaims(user2);
      await h.sql(`insert into public.notes values (21, 'u2', 'for u2 again')`);
      await h.settle();
      expect(recordIds(s.got)).toEqual([21]);
      s.subscription!.unsubscribe();
      await h.sql(`insert into public.notes values (22, 'u2', 'after unsubscribe')`);
      await h.settle();
      expect(s.got).toHaveLength(1);
    });
  });

  describe('realtime.send and private channels', () => {
    it('delivers realtime.send to the channel as a text broadcast carrying the message id', async () => {
      const pub: HubMessage[] = [];
      const priv: HubMessage[] = [];
      h.gw!.gateway.hub.subscribe(channelTopic('room-x', false), { deliver: (m) => pub.push(m) });
      h.gw!.gateway.hub.subscribe(channelTopic('room-x', true), { deliver: (m) => priv.push(m) });
      await h.sql(`select realtime.send('{"x":1}'::jsonb, 'ev', 'room-x', false)`);
      await h.sql(`select realtime.send('{"y":2}'::jsonb, 'secret', 'room-x', true)`);
      await h.sql(`select realtime.send('{"z":3}'::jsonb, 'ev', 'room-x')`); // private by default
      await h.exec(`begin; select realtime.send('{"never":1}'::jsonb, 'ev', 'room-x', false); rollback;`);
      await h.settle();
      expect(pub).toHaveLength(1);
      const data = pub[0]!.data as { event: string; payload: { x: number; id: string }; id: string; frame: string };
      expect(pub[0]!.event).toBe('broadcast');
      expect(data).toMatchObject({ event: 'ev', frame: 'text', payload: { x: 1 } });
      expect(data.payload.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(data.id).toBe(data.payload.id);
      expect(priv.map((m) => (m.data as { event: string }).event)).toEqual(['secret', 'ev']);
    });

    it('authorizes private channels with the RLS policies on realtime.messages', async () => {
      const auth = h.gw!.gateway.service('database').authorizer;
      expect(await auth.canRead('room:u1', user1, true)).toEqual({ broadcastRead: true, presenceRead: true });
      expect(await auth.canRead('room:u1', user1, false)).toEqual({ broadcastRead: true, presenceRead: false });
      expect(await auth.canRead('room:u1', user2, true)).toEqual({ broadcastRead: false, presenceRead: false });
      expect(await auth.canRead('room:u1', anon, true)).toEqual({ broadcastRead: false, presenceRead: false });
      expect(await auth.canRead('room:u1', service, true)).toEqual({ broadcastRead: true, presenceRead: true });
      expect(await auth.canWrite('room:u1', user1, 'broadcast')).toBe(true);
      expect(await auth.canWrite('room:u1', user1, 'presence')).toBe(false);
      expect(await auth.canWrite('room:u1', user2, 'broadcast')).toBe(false);
      expect(await auth.canRead('room:u1', { role: 'no_such_role', exp: 0 }, true)).toEqual({ broadcastRead: false, presenceRead: false });
      const [{ n }] = (await h.sql<{ n: number }>(`select count(*)::int as n from realtime.messages where topic = 'room:u1'`)) as [{ n: number }];
      expect(n).toBe(0); // the probes were rolled back
    });
  });

  describe('comments API', () => {
    const call = async (method: string, path: string, token: string | undefined, body?: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(`${h.gw!.url}${path}`, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown> & { error?: { code: string; message: string } }) : undefined };
    };

    it('adds, edits and deletes comments as the caller, and the changes reach project subscribers', async () => {
      const u1 = await h.gw!.userToken('u1');
      const u2 = await h.gw!.userToken('u2');
      const watcher = await h.subscribe([{ event: '*', schema: 'public', table: 'project_comments', filter: 'project_id=eq.p1' }], anon);
      const elsewhere = await h.subscribe([{ event: '*', schema: 'public', table: 'project_comments', filter: 'project_id=eq.p2' }], anon);

      const created = await call('POST', '/api/projects/p1/comments', u1, { body: 'first!' });
      expect(created.status).toBe(201);
      expect(created.json).toMatchObject({ project_id: 'p1', user_id: 'u1', body: 'first!' });
      const id = created.json!.id as number;
      expect(typeof id).toBe('number');
      expect(created.json!.created_at).toMatch(/^\d{4}-\d\d-\d\dT/);

      await eventually(() => expect(watcher.got).toHaveLength(1)); // see the e2e suite: RLS is checked when read
      const edited = await call('PATCH', `/api/projects/p1/comments/${id}`, u1, { body: 'edited' });
      expect(edited.status).toBe(200);
      expect(edited.json).toMatchObject({ id, body: 'edited' });
      // Someone else's comment: invisible to their RLS policies, so not found.
      expect((await call('PATCH', `/api/projects/p1/comments/${id}`, u2, { body: 'hijack' })).status).toBe(404);
      expect((await call('DELETE', `/api/projects/p1/comments/${id}`, u2)).status).toBe(404);
      // The right id in the wrong project is not found either.
      expect((await call('DELETE', `/api/projects/p2/comments/${id}`, u1)).status).toBe(404);

      const list = await call('GET', '/api/projects/p1/comments', h.gw!.keys.anon);
      expect(list.status).toBe(200);
      expect(list.json).toEqual([expect.objectContaining({ id, body: 'edited' })]);

      await eventually(() => expect(watcher.got).toHaveLength(2));
      expect((await call('DELETE', `/api/projects/p1/comments/${id}`, u1)).status).toBe(204);
      await eventually(() => expect(watcher.got.map((d) => d.data.type)).toEqual(['INSERT', 'UPDATE', 'DELETE']));
      expect(watcher.got[0]!.data.record).toMatchObject({ id, body: 'first!', user_id: 'u1' });
      expect(watcher.got[1]!.data.record).toMatchObject({ id, body: 'edited' });
      expect(watcher.got[2]!.data.old_record).toEqual({ id }); // RLS table: a DELETE shows only the key
      await h.settle();
      expect(elsewhere.got).toHaveLength(0);
    });

    it('lets RLS and grants refuse what the caller may not do', async () => {
      const u1 = await h.gw!.userToken('u1');
      const anonPost = await call('POST', '/api/projects/p1/comments', h.gw!.keys.anon, { body: 'anonymous', user_id: 'someone' });
      expect(anonPost.status).toBe(403);
      expect(anonPost.json!.error).toMatchObject({ code: 'forbidden', message: expect.stringContaining('permission denied') });
      const forged = await call('POST', '/api/projects/p1/comments', u1, { body: 'as u2', user_id: 'u2' });
      expect(forged.status).toBe(403);
      expect(forged.json!.error!.message).toMatch(/row-level security/);
      const svc = await call('POST', '/api/projects/p1/comments', h.gw!.keys.service_role, { body: 'system note', user_id: 'system' });
      expect(svc.status).toBe(201);
      const noSub = await call('POST', '/api/projects/p1/comments', h.gw!.keys.service_role, { body: 'who?' });
      expect(noSub.status).toBe(400);
      expect(noSub.json!.error!.message).toMatch(/user_id is required/);
    });

    it('answers bad input with a JSON error naming what was wrong', async () => {
      const u1 = await h.gw!.userToken('u1');
      const cases: [Promise<{ status: number; json?: { error?: { code: string; message: string } } }>, number, string, RegExp][] = [
        [call('POST', '/api/projects/p1/comments', undefined, { body: 'x' }), 401, 'missing_api_key', /API key is missing/],
        [call('POST', '/api/projects/p1/comments', 'not-a-jwt', { body: 'x' }), 401, 'invalid_token', /not a valid JWT/],
        [call('POST', '/api/projects/p1/comments', u1, '{"body": '), 400, 'invalid_json', /not valid JSON/],
        [call('POST', '/api/projects/p1/comments', u1, [1, 2]), 400, 'invalid_body', /JSON object/],
        [call('POST', '/api/projects/p1/comments', u1, {}), 400, 'invalid_body', /"body" must be a string/],
        [call('POST', '/api/projects/p1/comments', u1, { body: '   ' }), 400, 'invalid_body', /must not be empty/],
        [call('POST', '/api/projects/p1/comments', u1, { body: 'x'.repeat(10_001) }), 400, 'invalid_body', /at most 10000/],
        [call('POST', '/api/projects/p1/comments', u1, { body: 'x', colour: 'red' }), 400, 'invalid_body', /unknown field colour/],
        [call('POST', '/api/projects/p1/comments', u1, 'body=x', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type', /application\/json/],
        [call('PATCH', '/api/projects/p1/comments/abc', u1, { body: 'x' }), 400, 'invalid_id', /positive integer/],
        [call('PATCH', '/api/projects/p1/comments/1', u1, { body: 'x', user_id: 'u2' }), 400, 'invalid_body', /unknown field user_id/],
        [call('GET', '/api/projects/p1/comments?limit=0', u1), 400, 'invalid_limit', /limit/],
      ];
      for (const [pending, status, code, message] of cases) {
        const r = await pending;
        expect(r.status).toBe(status);
        expect(r.json!.error!.code).toBe(code);
        expect(r.json!.error!.message).toMatch(message);
      }
    });
  });

  describe('durability', () => {
    it('delivers changes committed while the gateway was down once it is back, exactly once', async () => {
      await h.stop();
      await h.start({ changesReplayMs: 20_000 });
      const first = await h.subscribe([{ event: '*', schema: 'public', table: 'items', filter: 'project_id=eq.durable' }], anon);
      await h.sql(`insert into public.items (id, name, project_id) values (600, 'before', 'durable')`);
      await eventually(() => expect(first.got).toHaveLength(1));

      await h.stop();
      await h.sql(`insert into public.items (id, name, project_id) values (601, 'while down', 'durable')`);
      await h.sql(`update public.items set name = 'edited while down' where id = 600`);
      await h.sql(`insert into public.items (id, name, project_id) values (602, 'elsewhere', 'other')`);

      await h.start({ changesReplayMs: 20_000 });
      // The client reconnects some time after the restart and subscribes again.
      await new Promise((r) => setTimeout(r, 300));
      const again = await h.subscribe([{ event: '*', schema: 'public', table: 'items', filter: 'project_id=eq.durable' }], anon);
      await eventually(() => expect(again.got).toHaveLength(2));
      expect(again.got.map((d) => [d.data.type, d.data.record!.id, d.data.record!.name])).toEqual([
        ['INSERT', 601, 'while down'],
        ['UPDATE', 600, 'edited while down'],
      ]);
      await h.sql(`insert into public.items (id, name, project_id) values (603, 'after', 'durable')`);
      await eventually(() => expect(again.got).toHaveLength(3));
      await h.settle();
      expect(again.got.map((d) => d.data.record!.id)).toEqual([601, 600, 603]);
    });

    it('does not replay to subscriptions made after the replay window', async () => {
      await h.stop();
      await h.sql(`insert into public.items (id, name, project_id) values (610, 'old news', 'window')`);
      await h.start({ changesReplayMs: 200 });
      await new Promise((r) => setTimeout(r, 400));
      const late = await h.subscribe([{ event: '*', schema: 'public', table: 'items', filter: 'project_id=eq.window' }], anon);
      await h.sql(`insert into public.items (id, name, project_id) values (611, 'news', 'window')`);
      await eventually(() => expect(late.got).toHaveLength(1));
      await h.settle();
      expect(late.got.map((d) => d.data.record!.id)).toEqual([611]);
    });
  });
}
