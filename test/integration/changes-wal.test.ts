// The change feed captured from the write-ahead log, on a PostgreSQL server of this file's
// own with wal_level=logical: the shared suites (changes-suite.ts, and end to end with
// supabase-js, changes-e2e-suite.ts) exactly as the outbox passes them, and a gateway
// process killed with SIGKILL mid-stream: after its restart the client has every row once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { changeFeedSuite } from './changes-suite.js';
import { changeFeedE2ESuite } from './changes-e2e-suite.js';
import { startWalServer, freePort, type WalServer } from '../helpers/wal-server.js';
import { createMigratedDatabase } from '../helpers/database.js';
import { spawnServe, type ServeProcess } from '../helpers/serve-process.js';
import { TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { closeClients, joined, supabase } from '../realtime/helpers.js';
import { eventually } from '../helpers/changes.js';
import { Auth } from '../../src/core/auth.js';

let server: WalServer;
beforeAll(async () => {
  server = await startWalServer();
}, 60_000);
afterAll(async () => server?.stop());

const wal = () => ({ adminUrl: server.adminUrl, gateway: { changesCapture: 'wal' as const } });

describe('change feed from the WAL', () => changeFeedSuite('postgres', wal));

describe('postgres_changes end to end from the WAL', () => changeFeedE2ESuite('postgres', wal));

describe('a WAL-capturing gateway killed with SIGKILL mid-stream', () => {
  it('delivers every row once after it restarts and the client rejoins: none lost, none twice', async () => {
    const db = await createMigratedDatabase('fanout_kill', server.adminUrl);
    const dataDir = mkdtempSync(join(tmpdir(), 'fanout-kill-'));
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    let child: ServeProcess | undefined;
    try {
      await writer.query(`create table public.events (id bigint primary key, topic text); grant select on public.events to anon;
                          alter publication supabase_realtime add table public.events;`);
      const port = await freePort();
      const serve = () =>
        spawnServe(['--port', String(port), '--database-url', db.url, '--changes-capture', 'wal', '--changes-replay-ms', '60000'], dataDir, {
          FANOUT_REALTIME_CONNECT_ERROR_BACKOFF_MS: '0',
          FANOUT_REALTIME_CHANNEL_ERROR_BACKOFF_MS: '0',
        });
      child = await serve();
      const gw = { url: child.url, keys: await new Auth(TEST_SECRET).projectKeys() } as TestGateway;
      const got: number[] = [];
      const system: Record<string, unknown>[] = [];
      const channel = supabase(gw)
        .channel('kill')
        .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'events' }, (p) => got.push(Number((p.new as { id: number }).id)))
        .on('system', {}, (p: Record<string, unknown>) => system.push(p));
      await joined(channel);
      await eventually(() => expect(system).toContainEqual(expect.objectContaining({ extension: 'postgres_changes', status: 'ok' })), 15_000);

      let next = 1;
      let writing = true;
      const writes = (async () => {
        while (writing) {
          await writer.query(`insert into public.events values ($1, 'k')`, [next++]);
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      await eventually(() => expect(got.length).toBeGreaterThan(30), 15_000);
      child.proc.kill('SIGKILL');
      await child.exited;
      await new Promise((r) => setTimeout(r, 500)); // commits while the gateway is down
      child = await serve();
      // realtime-js reconnects on its own and rejoins; the restarted gateway replays what it missed.
      await eventually(() => expect(got.length).toBeGreaterThan(next - 1 - 20), 30_000);
      writing = false;
      await writes;
      const last = next - 1;
      await eventually(() => expect(got.length).toBeGreaterThanOrEqual(last), 15_000);
      await new Promise((r) => setTimeout(r, 300)); // room for a duplicate to show up
      expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    } finally {
      await closeClients();
      if (child && child.proc.exitCode === null) {
        child.proc.kill('SIGTERM');
        await child.exited;
      }
      await writer.end();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
