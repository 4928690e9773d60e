// WAL capture's own behaviour, on a PostgreSQL server of this file's own with
// wal_level=logical: the choice of capture, no trigger and no outbox write, tables joining
// and leaving the publication, switching an existing database between the outbox and the
// WAL while a writer keeps committing (nothing lost, nothing twice), a replication
// connection killed under it, a slot dropped under it, slot lag, and `migrate --drop-slot`.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { ChangesHarness, eventually, type Delivery } from '../helpers/changes.js';
import { startWalServer, type WalServer } from '../helpers/wal-server.js';
import { closeClients, joined, supabase } from '../realtime/helpers.js';
import { SlotLagMonitor } from '../../src/changes/wal/lag.js';
import { GatewayMetrics } from '../../src/server/metrics.js';
import { createLogger } from '../../src/core/log.js';
import { slotName } from '../../src/changes/wal/slot.js';

const run = promisify(execFile);
const SLOT = slotName('default');

let server: WalServer;
beforeAll(async () => {
  server = await startWalServer();
}, 60_000);
afterAll(async () => server?.stop());

const SETUP = `create table public.events (id bigint primary key, topic text); grant select on public.events to anon;
               alter publication supabase_realtime add table public.events;`;

/** Inserts ids from..to one transaction each, as fast as the server takes them, until stopped. */
function writer(url: string, first: number) {
  const client = new pg.Client({ connectionString: url });
  let next = first;
  let stop = false;
  const done = (async () => {
    await client.connect();
    while (!stop) {
      await client.query('insert into public.events values ($1, $2)', [next, 'w']);
      next++;
      await new Promise((r) => setTimeout(r, 5));
    }
    await client.end();
  })();
  return {
    async stop(): Promise<number> {
      stop = true;
      await done;
      return next - 1;
    },
  };
}

const ids = (got: Delivery[]) => got.map((d) => Number(d.data.record?.id ?? d.data.old_record?.id));
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('WAL capture', () => {
  let h: ChangesHarness;
  beforeAll(async () => {
    h = await ChangesHarness.create('postgres', { adminUrl: server.adminUrl, gateway: { changesCapture: 'auto' } });
    await h.exec(SETUP);
    await h.start();
  }, 30_000);
  afterAll(async () => h?.close());

  it('is what auto chooses on a server with wal_level=logical, and leaves no trigger and no outbox row behind', async () => {
    expect((await h.parts()).capture).toBe('wal');
    const [slot] = await h.sql<{ plugin: string; active: boolean }>('select plugin, active from pg_replication_slots where slot_name = $1', [SLOT]);
    expect(slot).toEqual({ plugin: 'pgoutput', active: true });
    const anon = await h.claims(h.gw!.keys.anon);
    const { got } = await h.subscribe([{ event: '*', schema: 'public', table: 'events' }], anon);
    await h.sql(`insert into public.events values (1, 'a')`);
    await eventually(() => expect(ids(got)).toEqual([1]));
    const [t] = await h.sql<{ n: number }>(`select count(*)::int as n from pg_trigger where tgname = 'fanout_capture'`);
    expect(t!.n).toBe(0);
    const [o] = await h.sql<{ n: number }>('select count(*)::int as n from realtime.fanout_changes');
    expect(o!.n).toBe(0);
    const [cursor] = await h.sql<{ capture: string }>(`select capture from realtime.fanout_cursor where consumer = 'default'`);
    expect(cursor!.capture).toBe('wal');
  });

  it('delivers a table added to the publication at once, with no trigger, and stops when it leaves', async () => {
    const anon = await h.claims(h.gw!.keys.anon);
    await h.exec(`create table public.late (id bigint primary key, v text); grant select on public.late to anon;
                  alter publication supabase_realtime add table public.late;`);
    const { result, got } = await h.subscribe([{ event: '*', schema: 'public', table: 'late' }], anon);
    expect(result.ok).toBe(true);
    await h.sql(`insert into public.late values (1, 'x')`);
    await eventually(() => expect(got.map((d) => d.data.record)).toEqual([{ id: 1, v: 'x' }]));
    const [t] = await h.sql<{ n: number }>(`select count(*)::int as n from pg_trigger where tgrelid = 'public.late'::regclass`);
    expect(t!.n).toBe(0);
    await h.exec(`alter publication supabase_realtime drop table public.late`);
    await h.sql(`insert into public.late values (2, 'y')`);
    await h.sql(`insert into public.events values (2, 'marker')`);
    await h.settle();
    expect(got).toHaveLength(1);
  });

  it('gives commit_timestamp as the commit time of the transaction, not of the statement', async () => {
    const anon = await h.claims(h.gw!.keys.anon);
    const { got } = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'events', filter: 'topic=eq.slow' }], anon);
    const c = new pg.Client({ connectionString: h.databaseUrl });
    await c.connect();
    try {
      await c.query('begin');
      await c.query(`insert into public.events values (50, 'slow')`);
      await new Promise((r) => setTimeout(r, 300));
      const before = Date.now();
      await c.query('commit');
      await eventually(() => expect(got).toHaveLength(1));
      expect(Date.parse(got[0]!.data.commit_timestamp)).toBeGreaterThanOrEqual(before - 50);
    } finally {
      await c.end();
    }
  });

  it('resumes after its replication connection is terminated, with nothing lost or repeated', async () => {
    const anon = await h.claims(h.gw!.keys.anon);
    const { got } = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'events', filter: 'topic=eq.w' }], anon);
    const w = writer(h.databaseUrl!, 1000);
    await eventually(() => expect(got.length).toBeGreaterThan(5));
    const [killed] = await h.sql<{ n: number }>(`select count(pg_terminate_backend(active_pid))::int as n from pg_replication_slots where slot_name = $1`, [SLOT]);
    expect(killed!.n).toBe(1);
    await new Promise((r) => setTimeout(r, 1500));
    const last = await w.stop();
    await eventually(() => expect(ids(got)).toEqual(range(1000, last)), 10_000);
    await h.settle();
    expect(ids(got)).toEqual(range(1000, last));
  });

  it('tells subscribers in a system message when its slot is dropped under it, and captures again on a new slot', async () => {
    const client = supabase(h.gw!);
    const system: Record<string, unknown>[] = [];
    const got: number[] = [];
    const channel = client
      .channel('slot-loss')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'events', filter: 'topic=eq.after' }, (p) => got.push(Number((p.new as { id: number }).id)))
      .on('system', {}, (p: Record<string, unknown>) => system.push(p));
    await joined(channel);
    await eventually(() => expect(system).toContainEqual(expect.objectContaining({ extension: 'postgres_changes', status: 'ok' })));
    // An active slot cannot be dropped: end its reader first, then drop it before the gateway reconnects.
    await h.sql(`select pg_terminate_backend(active_pid, 5000) from pg_replication_slots where slot_name = $1`, [SLOT]);
    await h.sql(`select pg_drop_replication_slot($1)`, [SLOT]);
    await eventually(
      () => expect(system).toContainEqual(expect.objectContaining({ extension: 'postgres_changes', status: 'error', message: expect.stringMatching(/replication slot fanout_default was dropped .* lost/) })),
      10_000,
    );
    for (let i = 0; i < 100 && (await h.sql('select 1 from pg_replication_slots where slot_name = $1 and active', [SLOT])).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await h.sql(`insert into public.events values (3000, 'after')`);
    await eventually(() => expect(got).toEqual([3000]));
    await closeClients();
  });

  it('reports slot lag in bytes and seconds while nobody reads the slot', async () => {
    const res = await fetch(`${h.gw!.url}/metrics`);
    const text = await res.text();
    expect(text).toMatch(new RegExp(`fanout_changes_slot_lag_bytes\\{slot="${SLOT}"\\} \\d+`));
    expect(text).toMatch(new RegExp(`fanout_changes_slot_lag_seconds\\{slot="${SLOT}"\\} [\\d.]+`));
    await h.stop();
    const metrics = new GatewayMetrics();
    const { openDatabase } = await import('../../src/changes/database.js');
    const db = await openDatabase({ databaseUrl: h.databaseUrl, dataDir: '/nonexistent', log: createLogger({ level: 'silent' }) });
    try {
      const monitor = new SlotLagMonitor(db, SLOT, metrics, createLogger({ level: 'silent' }));
      const t0 = Date.now();
      await monitor.sample(t0);
      await h.sql(`insert into public.events select g, 'unread' from generate_series(5000, 5100) g`);
      const later = await monitor.sample(t0 + 60_000);
      expect(later!.bytes).toBeGreaterThan(0);
      expect(later!.seconds).toBe(60);
    } finally {
      await db.close();
      await h.start();
    }
  });

  it('fanout migrate --drop-slot refuses a slot a gateway reads, and drops it once the gateway is gone', async () => {
    const cli = (args: string[]) => run(process.execPath, ['bin/fanout.js', 'migrate', '--database-url', h.databaseUrl!, '--drop-slot', '--json', ...args]).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    const busy = await cli([]);
    expect(busy.code).toBe(4); // set-up failed (exit-codes.ts)
    expect(busy.stderr).toMatch(/replication slot fanout_default is in use by another process .*stop that gateway first/);
    await h.stop();
    const dropped = await cli([]);
    expect(dropped.code).toBe(0);
    expect(JSON.parse(dropped.stdout)).toMatchObject({ slot: { name: SLOT, dropped: true } });
    expect(await h.sql('select 1 from pg_replication_slots where slot_name = $1', [SLOT])).toHaveLength(0);
    await h.start();
  }, 30_000);
});

describe('switching an existing database between the outbox and the WAL', () => {
  let h: ChangesHarness;
  beforeAll(async () => {
    h = await ChangesHarness.create('postgres', { adminUrl: server.adminUrl });
    await h.exec(SETUP);
  }, 30_000);
  afterAll(async () => h?.close());

  /** Restarts the gateway with another capture while a writer commits, and checks every row arrives once. */
  async function switchUnderLoad(from: 'outbox' | 'wal', to: 'outbox' | 'wal', first: number): Promise<void> {
    await h.start({ changesCapture: from, changesReplayMs: 60_000 });
    expect((await h.parts()).capture).toBe(from);
    const anon = await h.claims(h.gw!.keys.anon);
    const before = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'events', filter: 'topic=eq.w' }], anon);
    const w = writer(h.databaseUrl!, first);
    await eventually(() => expect(before.got.length).toBeGreaterThan(5));
    await h.stop();
    await h.start({ changesCapture: to, changesReplayMs: 60_000 });
    expect((await h.parts()).capture).toBe(to);
    // A subscriber rejoining after the restart gets, within the replay window, what it missed.
    const after = await h.subscribe([{ event: 'INSERT', schema: 'public', table: 'events', filter: 'topic=eq.w' }], anon);
    await new Promise((r) => setTimeout(r, 500));
    const last = await w.stop();
    await h.settle();
    await eventually(() => expect([...ids(before.got), ...ids(after.got)].sort((a, b) => a - b)).toEqual(range(first, last)), 10_000);
    await h.stop();
  }

  it('from the outbox to the WAL loses nothing, repeats nothing, and removes the capture triggers', async () => {
    await switchUnderLoad('outbox', 'wal', 1);
    const [t] = await h.sql<{ n: number }>(`select count(*)::int as n from pg_trigger where tgname = 'fanout_capture'`);
    expect(t!.n).toBe(0);
  }, 60_000);

  it('from the WAL back to the outbox loses nothing, repeats nothing, and drops the slot', async () => {
    await switchUnderLoad('wal', 'outbox', 100_000);
    const [t] = await h.sql<{ n: number }>(`select count(*)::int as n from pg_trigger where tgname = 'fanout_capture' and tgrelid = 'public.events'::regclass`);
    expect(t!.n).toBe(1);
    expect(await h.sql('select 1 from pg_replication_slots where slot_name = $1', [SLOT])).toHaveLength(0);
  }, 60_000);
});

describe('auto on a role that may not replicate', () => {
  it('falls back to the outbox and says why; wal refuses to start', async () => {
    const h = await ChangesHarness.create('postgres', { adminUrl: server.adminUrl });
    try {
      const role = `fanout_norepl_${Math.random().toString(36).slice(2, 8)}`;
      await h.exec(`create role ${role} login; grant all on database ${new URL(h.databaseUrl!).pathname.slice(1)} to ${role};
                    grant all on schema realtime to ${role}; grant all on all tables in schema realtime to ${role};
                    grant execute on all functions in schema realtime to ${role}; grant anon, authenticated, service_role to ${role};`);
      const url = new URL(h.databaseUrl!);
      url.username = role;
      await h.start({ databaseUrl: url.toString(), changesCapture: 'auto' });
      expect((await h.parts()).capture).toBe('outbox');
      await h.stop();
      await expect(h.start({ databaseUrl: url.toString(), changesCapture: 'wal' })).rejects.toThrow(/--changes-capture wal cannot run: the database role has neither REPLICATION nor superuser/);
      await h.stop();
    } finally {
      await h.close();
    }
  }, 30_000);
});
