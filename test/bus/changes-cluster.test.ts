// postgres_changes in a cluster: gateways sharing one PostgreSQL database and one bus
// elect one leader (advisory lock) that reads the outbox, or with WAL capture the one
// replication slot (on a wal_level=logical server of the file's own); every node dispatches to its own
// subscribers from the bus. A change committed once is delivered once to a subscriber on
// each node (not once per node per subscriber), and when the leader stops another node
// takes over without losing the changes committed in between.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RealtimeChannel, RealtimePostgresChangesPayload } from '@supabase/supabase-js';
import pg from 'pg';
import type { TestGateway } from '../helpers/gateway.js';
import { createMigratedDatabase, type TestDatabase } from '../helpers/database.js';
import { closeClients, joined, supabase } from '../realtime/helpers.js';
import { waitFor } from '../sse/helpers.js';
import { startCluster, type Cluster } from './helpers.js';
import { startWalServer, type WalServer } from '../helpers/wal-server.js';

type Change = RealtimePostgresChangesPayload<Record<string, unknown>>;

async function leaderGauge(gw: TestGateway): Promise<number> {
  const metric = gw.gateway.metrics.registry.getSingleMetric('fanout_changes_leader');
  return (await metric!.get()).values[0]?.value ?? 0;
}

describe.each([
  { kind: 'redis', capture: 'outbox' },
  { kind: 'nats', capture: 'outbox' },
  { kind: 'redis', capture: 'wal' },
] as const)('the change feed of a cluster on the $kind bus, captured by $capture', ({ kind, capture }) => {
  let db: TestDatabase;
  let writer: pg.Client;
  let cluster: Cluster;
  let walServer: WalServer | undefined;

  beforeAll(async () => {
    if (capture === 'wal') walServer = await startWalServer();
    db = await createMigratedDatabase('fanout_cluster', walServer?.adminUrl);
    writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    cluster = await startCluster(kind, 2, { databaseUrl: db.url, dbStart: 'eager', changesReplayMs: 0, changesCapture: capture });
  }, 60_000);
  afterAll(async () => {
    await closeClients();
    await cluster?.stop();
    await writer?.end();
    await db?.drop();
    await walServer?.stop();
  }, 60_000);

  /** A supabase-js channel (service_role: no RLS) collecting the INSERTs of project `p`. */
  async function watch(gw: TestGateway, project: string): Promise<{ channel: RealtimeChannel; got: Change[] }> {
    const got: Change[] = [];
    const system: Record<string, unknown>[] = [];
    const channel = supabase(gw, gw.keys.service_role)
      .channel(`project:${project}:${Math.random()}`)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'project_comments', filter: `project_id=eq.${project}` }, (p) => got.push(p as Change))
      .on('system', {}, (p: Record<string, unknown>) => system.push(p));
    await joined(channel);
    await waitFor(() => system.some((s) => s.extension === 'postgres_changes' && s.status === 'ok'), 'the postgres_changes subscription');
    return { channel, got };
  }

  const insert = (project: string, body: string) => writer.query('insert into public.project_comments (project_id, user_id, body) values ($1, $2, $3)', [project, 'writer', body]);

  it('elects exactly one leader and delivers each change once to subscribers on every node', async () => {
    const [a, b] = cluster.nodes as [TestGateway, TestGateway];
    const deadline = Date.now() + 15_000;
    let leaders = 0;
    while (Date.now() < deadline) {
      leaders = (await leaderGauge(a)) + (await leaderGauge(b));
      if (leaders === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(leaders).toBe(1);
    const onA = await watch(a, 'p1');
    const onB = await watch(b, 'p1');
    const onB2 = await watch(b, 'p1');
    for (let i = 1; i <= 5; i++) await insert('p1', `c${i}`);
    await waitFor(() => onA.got.length >= 5 && onB.got.length >= 5 && onB2.got.length >= 5, 'five changes on each subscriber', 15_000);
    await new Promise((r) => setTimeout(r, 300)); // room for any duplicate to show up
    for (const w of [onA, onB, onB2]) expect(w.got.map((c) => (c.new as { body: string }).body)).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
    // One cursor for the cluster, read by the leader only.
    const cursors = await writer.query<{ consumer: string }>('select consumer from realtime.fanout_cursor order by consumer');
    expect(cursors.rows.map((r) => r.consumer)).toEqual(['default']);
    if (capture === 'wal') {
      // One slot for the cluster, read by one connection (the leader's).
      const slots = await writer.query<{ slot_name: string; active: boolean }>('select slot_name, active from pg_replication_slots');
      expect(slots.rows).toEqual([{ slot_name: 'fanout_default', active: true }]);
    }
  });

  it('delivers realtime.send_binary and realtime.send once to subscribers on every node, bytes intact over the bus', async () => {
    const [a, b] = cluster.nodes as [TestGateway, TestGateway];
    const got: { node: string; event: string; payload: unknown }[] = [];
    for (const [node, gw] of [['a', a], ['b', b]] as const) {
      await joined(supabase(gw).channel('db-broadcast').on('broadcast', { event: '*' }, (m) => got.push({ node, event: m.event, payload: m.payload instanceof ArrayBuffer ? [...new Uint8Array(m.payload)] : m.payload })));
    }
    await writer.query(`select realtime.send_binary('\\x00ff7f'::bytea, 'bin', 'db-broadcast', false)`);
    await writer.query(`select realtime.send('{"n":1}'::jsonb, 'json', 'db-broadcast', false)`);
    await waitFor(() => got.length >= 4, 'both broadcasts on both nodes', 15_000);
    await new Promise((r) => setTimeout(r, 300)); // room for any duplicate to show up
    for (const node of ['a', 'b']) {
      expect(got.filter((g) => g.node === node).map((g) => [g.event, g.payload])).toEqual([
        ['bin', [0, 255, 127]],
        ['json', expect.objectContaining({ n: 1 })],
      ]);
    }
  });

  it('hands the lead to another node when the leader stops, without losing changes committed meanwhile', async () => {
    const nodes = cluster.nodes as TestGateway[];
    const leaderIndex = (await leaderGauge(nodes[0]!)) === 1 ? 0 : 1;
    const leader = nodes[leaderIndex]!;
    const survivor = nodes[1 - leaderIndex]!;
    const onSurvivor = await watch(survivor, 'p2');
    await insert('p2', 'before');
    await waitFor(() => onSurvivor.got.length === 1, 'the change before the handover');
    await leader.stop();
    cluster.nodes.splice(leaderIndex, 1);
    await insert('p2', 'during');
    await waitFor(() => onSurvivor.got.length === 2, 'the change committed while no node led', 20_000);
    expect(await leaderGauge(survivor)).toBe(1);
    await insert('p2', 'after');
    await waitFor(() => onSurvivor.got.length === 3, 'the change after the handover', 15_000);
    expect(onSurvivor.got.map((c) => (c.new as { body: string }).body)).toEqual(['before', 'during', 'after']);
  });
});
