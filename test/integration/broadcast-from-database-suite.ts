// Broadcast from the database with the unmodified @supabase/supabase-js client, on a real
// database (run for PostgreSQL and PGlite by broadcast-from-database-*.test.ts):
// `realtime.broadcast_changes` called from the trigger function Supabase's docs show,
// `realtime.send_binary` through the client's binary broadcast, live and replayed, and a
// mixed JSON/binary history replayed row by row. Private channels are authorized by RLS
// policies on realtime.messages, as on Supabase.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { SupabaseClient } from '@supabase/supabase-js';
import { ChangesHarness, eventually, type DatabaseKind } from '../helpers/changes.js';
import { closeClients, joined, subscribe, supabase } from '../realtime/helpers.js';

/** A room membership table, the policy Supabase's docs pair with broadcast_changes, and their trigger function as written. */
const SETUP = `
create table public.members (room text not null, user_id text not null, primary key (room, user_id));
grant select on public.members to authenticated;
insert into public.members values ('a', 'u1'), ('a', 'u2'), ('b', 'u3');

create policy "room members receive broadcasts" on realtime.messages for select to authenticated
  using (exists (select 1 from public.members m where 'room:' || m.room = (select realtime.topic()) and m.user_id = (select auth.jwt() ->> 'sub')));

create table public.todos (id bigint primary key, room text not null, title text, done boolean default false);

create or replace function public.todos_changes()
returns trigger
security definer
language plpgsql
as $$
begin
  perform realtime.broadcast_changes(
    'room:' || coalesce(NEW.room, OLD.room) ::text, -- topic
    TG_OP,                                          -- event
    TG_OP,                                          -- operation
    TG_TABLE_NAME,                                  -- table
    TG_TABLE_SCHEMA,                                -- schema
    NEW,                                            -- new record
    OLD                                             -- old record
  );
  return null;
end;
$$;

create trigger handle_todos_changes
after insert or update or delete
on public.todos
for each row
execute function public.todos_changes();
`;

/** What supabase-js hands a broadcast listener. */
interface Received {
  type: string;
  event: string;
  payload: unknown;
  meta?: { id?: string; replayed?: boolean };
}

/** A JSON or binary payload as the test compares it: binary as its byte values. */
function shape(m: Received): { event: string; payload: unknown; replayed: boolean } {
  const payload = m.payload instanceof ArrayBuffer ? { bytes: [...new Uint8Array(m.payload)] } : m.payload;
  return { event: m.event, payload, replayed: m.meta?.replayed === true };
}

export function broadcastFromDatabaseSuite(kind: DatabaseKind): void {
  let h: ChangesHarness;
  const token = (user: string) => h.gw!.userToken(user);
  /** A client of its own per join: supabase-js hands back the existing channel for a topic it already has. */
  const client = async (user: string): Promise<SupabaseClient> => supabase(h.gw!, await token(user));
  const listen = async (c: SupabaseClient, topic: string, config: Record<string, unknown> = {}) => {
    const got: Received[] = [];
    await joined(c.channel(topic, { config: { private: true, ...config } }).on('broadcast', { event: '*' }, (m) => got.push(m as Received)));
    return got;
  };

  beforeAll(async () => {
    h = await ChangesHarness.create(kind);
    await h.start({ realtimeConnectErrorBackoffMs: 0, realtimeChannelErrorBackoffMs: 0 });
    await h.exec(SETUP);
  });
  afterEach(async () => closeClients());
  afterAll(async () => h?.close());

  it('delivers INSERT, UPDATE and DELETE from a broadcast_changes trigger to the private channel’s members and to no one else', async () => {
    const u1 = await listen(await client('u1'), 'room:a');
    const u2 = await listen(await client('u2'), 'room:a');
    const otherRoom = await listen(await client('u3'), 'room:b');
    // The public channel of the same name is another channel: nothing from the database reaches it.
    const publicSide: Received[] = [];
    await joined((await client('u3')).channel('room:a').on('broadcast', { event: '*' }, (m) => publicSide.push(m as Received)));
    // Not a member: the join is refused by the policy.
    const outsider = await subscribe((await client('u3')).channel('room:a', { config: { private: true } }));
    expect(outsider.status).toBe('CHANNEL_ERROR');
    expect(outsider.error?.message).toBe('Unauthorized: You do not have permissions to read from this Channel topic: room:a');

    await h.sql(`insert into public.todos (id, room, title) values (1, 'a', 'buy milk')`);
    await h.sql(`insert into public.todos (id, room, title) values (2, 'b', 'elsewhere')`);
    await h.sql(`update public.todos set done = true where id = 1`);
    await h.sql(`delete from public.todos where id = 1`);
    await eventually(() => expect(u1.map((m) => m.event)).toEqual(['INSERT', 'UPDATE', 'DELETE']));
    await eventually(() => expect(u2.map((m) => m.event)).toEqual(['INSERT', 'UPDATE', 'DELETE']));

    const [insert, update, remove] = u1 as [Received, Received, Received];
    const row = { id: 1, room: 'a', title: 'buy milk', done: false };
    expect(insert).toMatchObject({ type: 'broadcast', event: 'INSERT', payload: { schema: 'public', table: 'todos', operation: 'INSERT', record: row, old_record: null } });
    expect(update.payload).toMatchObject({ operation: 'UPDATE', record: { ...row, done: true }, old_record: row });
    expect(remove.payload).toMatchObject({ operation: 'DELETE', record: null, old_record: { ...row, done: true } });
    // Supabase's realtime.send adds the message id to the payload; it is the message's meta.id too.
    for (const m of u1) {
      const id = (m.payload as { id?: unknown }).id;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(m.meta?.id).toBe(id);
    }
    expect(new Set(u1.map((m) => m.meta?.id)).size).toBe(3);

    // Everything committed has been dispatched: still nothing where it does not belong.
    await h.settle();
    expect(publicSide).toEqual([]);
    // room:b got only its own row.
    expect(otherRoom.map((m) => [m.event, (m.payload as { record: { id: number } }).record.id])).toEqual([['INSERT', 2]]);
    expect(u1).toHaveLength(3);

    // The same rows replay to a member who joins later with broadcast.replay.
    const late = await listen(await client('u2'), 'room:a', { broadcast: { replay: { since: Date.now() - 60_000, limit: 25 } } });
    await eventually(() => expect(late.map((m) => m.event)).toEqual(['INSERT', 'UPDATE', 'DELETE']));
    expect(late.map((m) => m.payload)).toEqual(u1.map((m) => m.payload));
    expect(late.every((m) => m.meta?.replayed === true)).toBe(true);
  });

  it('refuses a statement-level call and an unknown operation with Supabase’s errors', async () => {
    await expect(h.sql(`select realtime.broadcast_changes('room:a', 'X', 'INSERT', 't', 'public', null::record, null::record, 'STATEMENT')`)).rejects.toThrow(
      'Failed to process the row: function can only be triggered for each row, not for each statement',
    );
    await expect(h.sql(`select realtime.broadcast_changes('room:a', 'X', 'TRUNCATE', 't', 'public', null::record, null::record)`)).rejects.toThrow('Failed to process the row: Unexpected operation type: TRUNCATE');
  });

  it('delivers realtime.send_binary as the same bytes through the client’s binary broadcast', async () => {
    const got = await listen(await client('u1'), 'room:a');
    const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await h.sql(`select realtime.send_binary($1::bytea, 'blob', 'room:a', true)`, [everyByte]);
    await h.sql(`select realtime.send_binary('\\x'::bytea, 'empty', 'room:a', true)`);
    await h.sql(`select realtime.send_binary('\\x0a0b'::bytea, 'blob', 'room:b', true)`);
    await eventually(() => expect(got).toHaveLength(2));
    expect(got[0]!.payload).toBeInstanceOf(ArrayBuffer);
    expect(Buffer.from(got[0]!.payload as ArrayBuffer).equals(everyByte)).toBe(true);
    expect(shape(got[1]!)).toEqual({ event: 'empty', payload: { bytes: [] }, replayed: false });
    const [stored] = await h.sql<{ id: string }>(`select id::text as id from realtime.messages where event = 'blob' and topic = 'room:a'`);
    expect(got[0]!.meta?.id).toBe(stored!.id);
    await h.settle();
    expect(got).toHaveLength(2);

    // The same bytes again in a replay.
    const replayed = await listen(await client('u2'), 'room:a', { broadcast: { replay: { since: Date.now() - 60_000, limit: 25 } } });
    await eventually(() => expect(replayed.filter((m) => m.meta?.id === stored!.id)).toHaveLength(1));
    const again = replayed.find((m) => m.meta?.id === stored!.id)!;
    expect(again.meta?.replayed).toBe(true);
    expect(Buffer.from(again.payload as ArrayBuffer).equals(everyByte)).toBe(true);
  });

  it('replays a mixed JSON/binary history once per row with the right payload, skips rows with neither, then goes live', async () => {
    const topic = 'room:a';
    const since = Date.now() - 1;
    // A member listening live while the history is written sees it exactly as the replay will.
    const live = await listen(await client('u2'), topic);
    await h.sql(`select realtime.send('{"n":1}'::jsonb, 'json', '${topic}', true)`);
    await h.sql(`select realtime.send_binary('\\x02'::bytea, 'bin', '${topic}', true)`);
    await h.sql(`insert into realtime.messages (topic, extension, event, private) values ('${topic}', 'broadcast', 'nothing', true)`);
    await h.sql(`select realtime.send('{"n":3}'::jsonb, 'json', '${topic}', true)`);
    await h.sql(`select realtime.send_binary('\\x0404'::bytea, 'bin', '${topic}', true)`);
    const history = [
      { event: 'json', payload: expect.objectContaining({ n: 1 }) },
      { event: 'bin', payload: { bytes: [2] } },
      { event: 'json', payload: expect.objectContaining({ n: 3 }) },
      { event: 'bin', payload: { bytes: [4, 4] } },
    ];
    await eventually(() => expect(live.map(shape)).toEqual(history.map((m) => ({ ...m, replayed: false }))));

    const got = await listen(await client('u1'), topic, { broadcast: { replay: { since, limit: 25 } } });
    await eventually(() => expect(got.map(shape)).toEqual(history.map((m) => ({ ...m, replayed: true }))));
    // Each stored row once, with the id it was stored under.
    const ids = await h.sql<{ id: string }>(`select id::text as id from realtime.messages where topic = $1 and inserted_at >= to_timestamp($2 / 1000.0) at time zone current_setting('TimeZone') and (payload is not null or binary_payload is not null) order by inserted_at, id`, [topic, since]);
    expect(got.map((m) => m.meta?.id)).toEqual(ids.map((r) => r.id));
    expect(live.map((m) => m.meta?.id)).toEqual(ids.map((r) => r.id));

    // Then live, once.
    await h.sql(`select realtime.send_binary('\\x05'::bytea, 'bin', '${topic}', true)`);
    await eventually(() => expect(got).toHaveLength(5));
    expect(shape(got[4]!)).toEqual({ event: 'bin', payload: { bytes: [5] }, replayed: false });
    await h.settle();
    expect(got).toHaveLength(5);
    expect(live.map((m) => m.event)).not.toContain('nothing');
  });

  it('keeps JSON and binary payloads exclusive, as Supabase’s check constraint does', async () => {
    await expect(h.sql(`insert into realtime.messages (topic, extension, event, payload, binary_payload) values ('x', 'broadcast', 'e', '{}', '\\x00')`)).rejects.toThrow(/messages_payload_exclusive/);
  });
}
