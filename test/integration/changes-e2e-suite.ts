// End to end with the unmodified @supabase/supabase-js client over the gateway's
// WebSocket, on a real database (run for PostgreSQL and PGlite by changes-e2e-*.test.ts):
// the seed's own channel pattern driven by the comments API, every filter operator, RLS
// per subscriber, realtime.send, private channels, broadcast replay, replication_ready, and a gateway restart with changes
// committed while it was down.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { RealtimeChannel, RealtimePostgresChangesPayload } from '@supabase/supabase-js';
import { ChangesHarness, eventually, type DatabaseKind, type HarnessOptions } from '../helpers/changes.js';
import { closeClients, joined, subscribe, supabase } from '../realtime/helpers.js';
import { ITEMS, OPERATOR_CASES, SETUP } from './changes-fixtures.js';

type Change = RealtimePostgresChangesPayload<Record<string, unknown>>;


/** Joins and waits for the `system` message saying the postgres_changes subscription is live. */
async function joinedWithChanges(channel: RealtimeChannel): Promise<RealtimeChannel> {
  const system: Record<string, unknown>[] = [];
  channel.on('system', {}, (p: Record<string, unknown>) => system.push(p));
  await joined(channel);
  await eventually(() => expect(system).toContainEqual(expect.objectContaining({ extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL' })));
  return channel;
}

/** `options` is read when the suite starts (a WAL test server is up by then). */
export function changeFeedE2ESuite(kind: DatabaseKind, options: () => HarnessOptions = () => ({})): void {
  let h: ChangesHarness;

  beforeAll(async () => {
    h = await ChangesHarness.create(kind, options());
    await h.start({ changesReplayMs: 30_000, realtimeConnectErrorBackoffMs: 0, realtimeChannelErrorBackoffMs: 0 });
    await h.exec(SETUP);
  });
  afterEach(async () => closeClients());
  afterAll(async () => h?.close());

  const comment = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${h.gw!.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, apikey: h.gw!.keys.anon, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
    return res.status === 204 ? undefined : ((await res.json()) as { id: number });
  };

  it("runs the seed's project channel: presence sync plus comment changes driven by the comments API", async () => {
    const client = supabase(h.gw!);
    const changes: Change[] = [];
    const system: Record<string, unknown>[] = [];
    let syncs = 0;
    const projectId = 'seed-42';
    const channel = client
      .channel(`project:${projectId}`)
      .on('presence', { event: 'sync' }, () => syncs++)
      .on('postgres_changes', { event: '*', schema: 'public', table: 'project_comments', filter: `project_id=eq.${projectId}` }, (p) => changes.push(p as Change))
      .on('system', {}, (p: Record<string, unknown>) => system.push(p));
    await joined(channel);
    await eventually(() => expect(system).toContainEqual(expect.objectContaining({ extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL' })));
    await channel.track({ user: 'u1' });
    await eventually(() => expect(syncs).toBeGreaterThan(0));

    // Another project's comments must not arrive here.
    const otherChanges: Change[] = [];
    const other = client.channel('project:other').on('postgres_changes', { event: '*', schema: 'public', table: 'project_comments', filter: 'project_id=eq.other' }, (p) => otherChanges.push(p as Change));
    await joinedWithChanges(other);

    // One step at a time: on an RLS table a change is checked against the row as it is when
    // the gateway reads it (as on Supabase), so an update deleted a moment later may not be shown.
    const user = await h.gw!.userToken('u1');
    const created = (await comment('POST', `/api/projects/${projectId}/comments`, user, { body: 'hello' }))!;
    await comment('POST', '/api/projects/other/comments', user, { body: 'elsewhere' });
    await eventually(() => expect(changes).toHaveLength(1));
    await comment('PATCH', `/api/projects/${projectId}/comments/${created.id}`, user, { body: 'hello, edited' });
    await eventually(() => expect(changes).toHaveLength(2));
    await comment('DELETE', `/api/projects/${projectId}/comments/${created.id}`, user);
    await eventually(() => expect(changes.map((c) => c.eventType)).toEqual(['INSERT', 'UPDATE', 'DELETE']));
    const [ins, upd, del] = changes as [Change, Change, Change];
    expect(ins).toMatchObject({ schema: 'public', table: 'project_comments', errors: null, old: {} });
    expect(ins.new).toMatchObject({ id: created.id, project_id: projectId, user_id: 'u1', body: 'hello' });
    expect(ins.commit_timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(upd.new).toMatchObject({ id: created.id, body: 'hello, edited' });
    expect(upd.old).toMatchObject({ id: created.id }); // RLS table: old rows are trimmed to the key on DELETE only
    expect(del).toMatchObject({ new: {}, old: { id: created.id } });
    expect(otherChanges.map((c) => (c.new as { body: string }).body)).toEqual(['elsewhere']);
  });

  it('delivers through the client exactly the rows each filter operator selects', async () => {
    const client = supabase(h.gw!);
    const received = OPERATOR_CASES.map(() => [] as number[]);
    const channels: RealtimeChannel[] = OPERATOR_CASES.map(([filter], i) =>
      client.channel(`ops-${i}`).on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'items', filter }, (p) => received[i]!.push(Number((p as Change & { new: { id: number } }).new.id))),
    );
    await Promise.all(channels.map(joinedWithChanges));
    await h.sql(ITEMS);
    await h.settle();
    for (const [i, [filter, where]] of OPERATOR_CASES.entries()) {
      const [truth] = await h.sql<{ ids: string[] }>(`select coalesce(array_agg(id::text order by id), '{}') as ids from public.items where id <= 6 and (${where})`);
      await eventually(() => expect(received[i]!.sort((a, b) => a - b), `${filter} ~ ${where}`).toEqual(truth!.ids.map(Number)), 3000);
    }
  });

  it('reports an invalid filter in a system message but still subscribes', async () => {
    const client = supabase(h.gw!);
    const system: Record<string, unknown>[] = [];
    const channel = client.channel('bad-filter').on('postgres_changes', { event: '*', schema: 'public', table: 'items', filter: 'id=foo.1' }, () => undefined).on('system', {}, (p: Record<string, unknown>) => system.push(p));
    await joined(channel);
    await eventually(() => expect(system).toContainEqual({ extension: 'postgres_changes', status: 'error', message: 'Error parsing `filter` params: ["foo", "1"]', channel: 'bad-filter' }));
  });

  it('gives each subscriber only the rows its own JWT may read', async () => {
    const u1 = supabase(h.gw!, await h.gw!.userToken('u1'));
    const u2 = supabase(h.gw!, await h.gw!.userToken('u2'));
    const seen: Record<string, number[]> = { u1: [], u2: [] };
    for (const [name, client] of [['u1', u1], ['u2', u2]] as const) {
      await joinedWithChanges(client.channel(`notes-${name}`).on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => seen[name]!.push(Number((p as Change & { new: { id: number } }).new.id))));
    }
    await h.sql(`insert into public.notes values (1, 'u1', 'mine'), (2, 'u2', 'yours'), (3, 'u1', 'mine too')`);
    await eventually(() => expect(seen).toEqual({ u1: [1, 3], u2: [2] }));
    await h.settle();
    expect(seen).toEqual({ u1: [1, 3], u2: [2] });
  });

  it('delivers realtime.send to public and private channels, and keeps others out of a private one', async () => {
    const token = await h.gw!.userToken('u1');
    const client = supabase(h.gw!, token);
    const pub: unknown[] = [];
    const priv: unknown[] = [];
    await joined(client.channel('news').on('broadcast', { event: 'headline' }, (p) => pub.push(p)));
    await joined(client.channel('room:u1', { config: { private: true } }).on('broadcast', { event: 'dm' }, (p) => priv.push(p)));
    await h.sql(`select realtime.send('{"title":"hi"}'::jsonb, 'headline', 'news', false)`);
    await h.sql(`select realtime.send('{"text":"psst"}'::jsonb, 'dm', 'room:u1', true)`);
    await eventually(() => expect(pub).toHaveLength(1));
    await eventually(() => expect(priv).toHaveLength(1));
    const msg = pub[0] as { type: string; event: string; payload: { title: string; id: string }; meta: { id: string } };
    expect(msg).toMatchObject({ type: 'broadcast', event: 'headline', payload: { title: 'hi' } });
    expect(msg.meta.id).toBe(msg.payload.id);
    expect(priv[0]).toMatchObject({ type: 'broadcast', event: 'dm', payload: { text: 'psst' } });

    const intruder = supabase(h.gw!, await h.gw!.userToken('u2'));
    const denied = await subscribe(intruder.channel('room:u1', { config: { private: true } }));
    expect(denied.status).toBe('CHANNEL_ERROR');
    expect(denied.error?.message).toBe('Unauthorized: You do not have permissions to read from this Channel topic: room:u1');
  });

  it('tells a channel joined with broadcast.replication_ready that the change feed is capturing', async () => {
    const system: Record<string, unknown>[] = [];
    await joined(supabase(h.gw!).channel('rr', { config: { broadcast: { replication_ready: true } } }).on('system', {}, (p: Record<string, unknown>) => system.push(p)));
    await eventually(() => expect(system).toEqual([{ extension: 'system', status: 'ok', message: 'Replication connection established', channel: 'rr' }]));
  });

  it('replays stored broadcasts to a private channel joined with broadcast.replay: the newest `limit` since `since`, oldest first, then live', async () => {
    // One client per join: supabase-js hands back the existing channel for a topic it already has.
    const token = await h.gw!.userToken('u3');
    const u3 = () => supabase(h.gw!, token);
    const client = u3();
    const send = (n: number) => h.sql(`select realtime.send('{"n":${n}}'::jsonb, 'note', 'room:u3', true)`);
    await send(0);
    await new Promise((r) => setTimeout(r, 50));
    const since = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    for (let n = 1; n <= 4; n++) await send(n);
    await h.sql(`select realtime.send('{"n":99}'::jsonb, 'note', 'room:other', true)`);

    type Note = { payload: { n: number }; meta?: { id: string; replayed?: boolean } };
    const got: Note[] = [];
    await joined(client.channel('room:u3', { config: { private: true, broadcast: { replay: { since, limit: 3 } } } }).on('broadcast', { event: 'note' }, (p) => got.push({ payload: p.payload as Note['payload'], meta: p.meta })));
    await eventually(() => expect(got).toHaveLength(3));
    expect(got.map((m) => m.payload.n)).toEqual([2, 3, 4]);
    expect(got.every((m) => m.meta?.replayed === true && typeof m.meta.id === 'string')).toBe(true);
    await send(5);
    await eventually(() => expect(got).toHaveLength(4));
    expect(got[3]).toMatchObject({ payload: { n: 5 } });
    expect(got[3]!.meta?.replayed).toBeUndefined();

    // Without `limit`: Supabase's default of 10, so everything since `since` (and nothing from another room).
    const all: Note[] = [];
    await joined(u3().channel('room:u3', { config: { private: true, broadcast: { replay: { since } } } }).on('broadcast', { event: 'note' }, (p) => all.push({ payload: p.payload as Note['payload'], meta: p.meta })));
    await eventually(() => expect(all.map((m) => m.payload.n)).toEqual([1, 2, 3, 4, 5]));

    const invalid = await subscribe(u3().channel('room:u3', { config: { private: true, broadcast: { replay: { since: 'yesterday' as unknown as number } } } }));
    expect(invalid.status).toBe('CHANNEL_ERROR');
    expect(invalid.error?.message).toBe('UnableToReplayMessages: Replay params are not valid');
    // Replay never opens a private channel to someone its policies keep out.
    const intruder = supabase(h.gw!, await h.gw!.userToken('u2'));
    const denied = await subscribe(intruder.channel('room:u3', { config: { private: true, broadcast: { replay: { since } } } }));
    expect(denied.error?.message).toBe('Unauthorized: You do not have permissions to read from this Channel topic: room:u3');
  });

  it('delivers changes committed while the gateway was down after it restarts and the client rejoins', async () => {
    const client = supabase(h.gw!);
    const got: Change[] = [];
    await joinedWithChanges(client.channel('durable').on('postgres_changes', { event: '*', schema: 'public', table: 'items', filter: 'project_id=eq.durable' }, (p) => got.push(p as Change)));
    await h.sql(`insert into public.items (id, name, project_id) values (100, 'before', 'durable')`);
    await eventually(() => expect(got).toHaveLength(1));

    await h.stop();
    await h.sql(`insert into public.items (id, name, project_id) values (101, 'while down', 'durable')`);
    await h.sql(`update public.items set name = 'changed while down' where id = 100`);
    await h.sql(`insert into public.items (id, name, project_id) values (102, 'not ours', 'other')`);
    await h.start({ changesReplayMs: 30_000, realtimeConnectErrorBackoffMs: 0, realtimeChannelErrorBackoffMs: 0 });

    // realtime-js reconnects on its own (1 s, 2 s, 5 s, 10 s back-off) and rejoins the channel.
    await eventually(() => expect(got).toHaveLength(3), 25_000);
    expect(got.map((c) => [c.eventType, (c.new as { id?: number }).id, (c.new as { name?: string }).name])).toEqual([
      ['INSERT', 100, 'before'],
      ['INSERT', 101, 'while down'],
      ['UPDATE', 100, 'changed while down'],
    ]);
    await h.sql(`insert into public.items (id, name, project_id) values (103, 'after', 'durable')`);
    await eventually(() => expect(got).toHaveLength(4));
    await h.settle();
    expect(got).toHaveLength(4);
  }, 60_000);
}
