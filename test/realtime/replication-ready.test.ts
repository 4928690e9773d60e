// `config.broadcast.replication_ready` when the database cannot be reached: the channel
// joins, then gets `system` "Replication connection was not established in time" at the
// deadline and is closed, while the rest of the gateway carries on. (Success, on
// PostgreSQL and PGlite, is in test/integration/changes-e2e-suite.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeClients, joined, startRealtimeGateway, supabase, waitFor } from './helpers.js';
import type { TestGateway } from '../helpers/gateway.js';
import { freePort } from '../bus/helpers.js';

let gw: TestGateway;

beforeAll(async () => {
  // Nothing listens there: every attempt to open the database is refused.
  const port = await freePort();
  gw = await startRealtimeGateway({ databaseUrl: `postgres://127.0.0.1:${port}/nowhere`, dbStart: 'lazy', realtimeReplicationReadyTimeoutMs: 1200 });
});
afterAll(async () => {
  await closeClients();
  await gw?.stop();
});

describe('replication_ready without a database', () => {
  it('closes the channel with a system error at the deadline; other channels carry on', async () => {
    const client = supabase(gw);
    const system: { extension: string; status: string; message: string; channel: string }[] = [];
    const started = Date.now();
    const channel = await joined(client.channel('rr-down', { config: { broadcast: { replication_ready: true } } }).on('system', {}, (p: (typeof system)[number]) => system.push(p)));
    const other = await joined(client.channel('rr-other', { config: { broadcast: { self: true } } }));
    await waitFor(() => system.length > 0, 'the system message', 5000);
    expect(system).toEqual([{ extension: 'system', status: 'error', message: 'Replication connection was not established in time', channel: 'rr-down' }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1100);
    await waitFor(() => channel.state === 'closed', 'the channel closed');
    const heard: unknown[] = [];
    other.on('broadcast', { event: 'ping' }, (m) => heard.push(m.payload));
    await other.send({ type: 'broadcast', event: 'ping', payload: { still: 'here' } });
    await waitFor(() => heard.length === 1, 'a broadcast on the other channel');
  });
});
