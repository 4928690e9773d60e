// The change feed captured from the write-ahead log, on a PostgreSQL server of this file's
// own with wal_level=logical: the shared suite (changes-suite.ts) exactly as the outbox
// passes it, plus what only WAL capture does.
import { afterAll, beforeAll, describe } from 'vitest';
import { changeFeedSuite } from './changes-suite.js';
import { startWalServer, type WalServer } from '../helpers/wal-server.js';

let server: WalServer;
beforeAll(async () => {
  server = await startWalServer();
}, 60_000);
afterAll(async () => server?.stop());

describe('change feed from the WAL', () => changeFeedSuite('postgres', () => ({ adminUrl: server.adminUrl, gateway: { changesCapture: 'wal' } })));
