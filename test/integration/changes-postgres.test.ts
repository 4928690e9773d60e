// The change feed on the machine's PostgreSQL (a database of this file's own): the shared
// suite (changes-suite.ts), plus what only a multi-connection server can show.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { changeFeedSuite } from './changes-suite.js';
import { ChangesHarness, eventually } from '../helpers/changes.js';

describe('change feed on postgres', () => changeFeedSuite('postgres'));

describe('change feed on postgres: concurrent transactions', () => {
  let h: ChangesHarness;
  beforeAll(async () => {
    h = await ChangesHarness.create('postgres');
    await h.start();
    await h.exec(`create table public.events (id bigint primary key, topic text); grant select on public.events to anon;
                  alter publication supabase_realtime add table public.events;`);
  });
  afterAll(async () => h?.close());

  it('delivers a transaction that commits after a later one, which an id cursor would skip', async () => {
    const anon = await h.claims(h.gw!.keys.anon);
    const { got } = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'events' }], anon);
    const slow = new pg.Client({ connectionString: h.databaseUrl });
    await slow.connect();
    try {
      await slow.query('begin');
      await slow.query(`insert into public.events values (1, 'slow')`); // takes the lower outbox id
      await h.sql(`insert into public.events values (2, 'fast')`); // commits first, with a higher id
      await eventually(() => expect(got.map((d) => d.data.record!.id)).toEqual([2]));
      await slow.query('commit');
      await eventually(() => expect(got.map((d) => d.data.record!.id)).toEqual([2, 1]));
      await h.settle();
      expect(got).toHaveLength(2);
    } finally {
      await slow.end();
    }
  });

  it('picks up a table added to the publication while the gateway runs, through the event trigger', async () => {
    const anon = await h.claims(h.gw!.keys.anon);
    await h.exec(`create table public.late (id bigint primary key); grant select on public.late to anon;
                  alter publication supabase_realtime add table public.late;`);
    const { result, got } = await h.subscribe([{ event: '*', schema: 'public', table: 'late' }], anon);
    expect(result.ok).toBe(true);
    await h.sql(`insert into public.late values (1)`);
    await eventually(() => expect(got).toHaveLength(1));
    await h.exec(`alter publication supabase_realtime drop table public.late`);
    const [t] = await h.sql<{ n: number }>(`select count(*)::int as n from pg_trigger where tgname = 'fanout_capture' and tgrelid = 'public.late'::regclass`);
    expect(t!.n).toBe(0);
  });

  it('keeps delivering after the LISTEN connection is killed', async () => {
    const anon = await h.claims(h.gw!.keys.anon);
    const { got } = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'events' }], anon);
    await h.sql(`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'fanout-listen'`);
    await h.sql(`insert into public.events values (10, 'after kill')`);
    await eventually(() => expect(got.map((d) => d.data.record!.id)).toEqual([10]), 8000);
  });
});
