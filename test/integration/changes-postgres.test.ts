// The change feed on the machine's PostgreSQL (a database of this file's own): the shared
// suite (changes-suite.ts), plus what only a multi-connection server can show.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { changeFeedSuite } from './changes-suite.js';
import { tmpdir } from 'node:os';
import { ChangesHarness, eventually } from '../helpers/changes.js';
import { openDatabase } from '../../src/changes/database.js';
import { OutboxConsumer } from '../../src/changes/outbox.js';
import { createLogger } from '../../src/core/log.js';
import { startGateway } from '../helpers/gateway.js';

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

  it('reads every committed row exactly once across pages, with transactions kept together, around an open one', async () => {
    const db = await openDatabase({ databaseUrl: h.databaseUrl, dataDir: tmpdir(), log: createLogger({ level: 'silent' }) });
    const seen: { id: string; table: string; row: number }[] = [];
    const consumer = new OutboxConsumer(db, async (rows) => void seen.push(...rows.map((r) => ({ id: r.id, table: r.table, row: Number(r.record!.id) }))), createLogger({ level: 'silent' }), {
      consumer: 'paging-test',
      pageSize: 7,
      pollMs: 50,
    });
    await consumer.start();
    const open = new pg.Client({ connectionString: h.databaseUrl });
    await open.connect();
    try {
      await open.query('begin');
      await open.query(`insert into public.events select g, 'open' from generate_series(1000, 1004) g`);
      for (let t = 0; t < 6; t++) await h.sql(`insert into public.events select g, 'batch' from generate_series(${2000 + t * 10}, ${2000 + t * 10 + 8}) g`);
      await consumer.settle();
      expect(seen.map((s) => s.row)).toEqual(Array.from({ length: 6 }, (_, t) => Array.from({ length: 9 }, (_, i) => 2000 + t * 10 + i)).flat());
      await open.query('commit');
      await eventually(() => expect(seen).toHaveLength(54 + 5));
      expect(seen.slice(54).map((s) => s.row)).toEqual([1000, 1001, 1002, 1003, 1004]);
      expect(new Set(seen.map((s) => s.id)).size).toBe(59);
    } finally {
      await open.end();
      await consumer.stop();
      await db.query(`delete from realtime.fanout_cursor where consumer = 'paging-test'`);
      await db.close();
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

  it('serves two gateways on one database, each with its own cursor, each to its own subscribers', async () => {
    const second = await startGateway({ databaseUrl: h.databaseUrl, dbStart: 'eager', changesReplayMs: 0, changesConsumer: 'second' });
    try {
      await second.gateway.service('databaseRuntime').parts();
      const anon = await h.claims(h.gw!.keys.anon);
      const here = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'events', filter: 'topic=eq.both' }], anon);
      const there: unknown[] = [];
      const r = await second.gateway.service('database').changeFeed.subscribe({
        channel: 'c',
        claims: await second.gateway.auth.verify(second.keys.anon),
        bindings: [{ id: 1, params: { event: 'INSERT', schema: 'public', table: 'events', filter: 'topic=eq.both' } }],
        deliver: (_ids, data) => there.push(data.record!.id),
      });
      expect(r.ok).toBe(true);
      await h.sql(`insert into public.events values (30, 'both')`);
      await eventually(() => expect(there).toEqual([30]));
      await eventually(() => expect(here.got.map((d) => d.data.record!.id)).toEqual([30]));
      const cursors = await h.sql<{ consumer: string }>('select consumer from realtime.fanout_cursor order by 1');
      expect(cursors.map((c) => c.consumer)).toEqual(['default', 'second']);
    } finally {
      await second.stop();
      await h.sql(`delete from realtime.fanout_cursor where consumer = 'second'`);
    }
  });

  it('keeps delivering after the LISTEN connection is killed', async () => {
    const anon = await h.claims(h.gw!.keys.anon);
    const { got } = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'events' }], anon);
    await h.sql(`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'fanout-listen'`);
    await h.sql(`insert into public.events values (10, 'after kill')`);
    await eventually(() => expect(got.map((d) => d.data.record!.id)).toEqual([10]), 8000);
  });
});
