// WAL capture hands a transaction to dispatch only once other sessions can see it.
//
// PostgreSQL flushes a commit record — which the WAL sender may decode and send at once —
// before the committing backend leaves the process array and its rows become visible.
// For that moment (longer on a loaded machine, and a synchronous standby's whole round
// trip) the change is in the stream but a new snapshot does not see the row, and the RLS
// check, which looks the row up by its primary key, would drop it for every subscriber.
// This file's server holds every commit that asks for synchronous replication
// (synchronous_standby_names names a standby that never connects; the default
// synchronous_commit=local waits for nobody), which keeps a decoded transaction invisible
// for as long as the test likes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startWalServer, type WalServer } from '../helpers/wal-server.js';
import { ChangesHarness, eventually } from '../helpers/changes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: WalServer;
let h: ChangesHarness;
beforeAll(async () => {
  server = await startWalServer({ synchronous_standby_names: "'never_connects'", synchronous_commit: 'local' });
  h = await ChangesHarness.create('postgres', { adminUrl: server.adminUrl, gateway: { changesCapture: 'wal' } });
  await h.start();
}, 60_000);
afterAll(async () => {
  await h?.close();
  await server?.stop();
});

describe('WAL capture and the moment between a commit record and its visibility', () => {
  it('delivers an insert on an RLS table whose commit was decoded before other sessions could see it', async () => {
    const { result, got } = await h.subscribe(
      [{ event: 'INSERT', schema: 'public', table: 'project_comments', filter: 'project_id=eq.held' }],
      await h.claims(h.gw!.keys.anon),
    );
    expect(result.ok).toBe(true);
    const holder = new pg.Client({ connectionString: h.databaseUrl });
    await holder.connect();
    try {
      const pid = (await holder.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      await holder.query('set synchronous_commit = on');
      const held = holder.query(`insert into public.project_comments (project_id, user_id, body) values ('held', 'u1', 'decoded before visible')`);
      // Its commit record is flushed and it waits for the standby: in the WAL, invisible to everyone else.
      await eventually(async () => expect(await h.sql('select wait_event from pg_stat_activity where pid = $1', [pid])).toEqual([{ wait_event: 'SyncRep' }]), 10_000);
      const flushed = (await h.sql<{ lsn: string }>('select pg_current_wal_flush_lsn()::text as lsn'))[0]!.lsn;
      await eventually(async () => expect(await h.sql('select count(*)::int as n from pg_stat_replication where sent_lsn >= $1::pg_lsn', [flushed])).toEqual([{ n: 1 }]), 10_000);
      expect(await h.sql('select count(*)::int as n from public.project_comments')).toEqual([{ n: 0 }]);
      await sleep(500); // the gateway has the transaction: time enough to dispatch it if it did not wait

      await h.sql('select pg_cancel_backend($1)', [pid]); // ends the standby wait: the transaction becomes visible
      await held;
      await h.sql(`insert into public.project_comments (project_id, user_id, body) values ('held', 'u1', 'after')`);
      await eventually(() => expect(got.map((d) => d.data.record?.body)).toEqual(['decoded before visible', 'after']), 10_000);
    } finally {
      await holder.end();
    }
  }, 60_000);
});
