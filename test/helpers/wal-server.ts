// A PostgreSQL server of the test file's own with `wal_level=logical`, for the WAL capture
// tests: initdb (Debian's PostgreSQL 15 binaries, as the postgres OS user) into a temporary
// directory, started on a free port, stopped and removed afterwards. The machine's shared
// server (wal_level=replica) is never touched. Start one per test file (beforeAll) and
// give each test its own database with `createTestDatabase(prefix, server.adminUrl)`.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const POSTGRES_BIN = process.env.FANOUT_TEST_POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';

export interface WalServer {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust authentication). */
  adminUrl: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (the kernel picks it; the server binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL binary as the postgres OS user when we are root (initdb refuses root). */
function asPostgres(bin: string, args: string[]): string {
  const path = join(POSTGRES_BIN, bin);
  const asRoot = process.getuid?.() === 0;
  return execFileSync(asRoot ? 'runuser' : path, asRoot ? ['-u', 'postgres', '--', path, ...args] : args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function startWalServer(settings: Record<string, string> = {}): Promise<WalServer> {
  const root = mkdtempSync(join(tmpdir(), 'fanout-walpg-'));
  chmodSync(root, 0o777);
  const dataDir = join(root, 'data');
  asPostgres('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const options = {
    wal_level: 'logical',
    max_replication_slots: '20',
    max_wal_senders: '20',
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${root}'`,
    fsync: 'off',
    full_page_writes: 'off',
    shared_buffers: '64MB',
    max_connections: '100',
    ...settings,
  };
  const flags = Object.entries(options)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(' ');
  asPostgres('pg_ctl', ['-D', dataDir, '-l', join(root, 'server.log'), '-w', '-t', '60', '-o', flags, 'start']);
  return {
    port,
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    async stop() {
      try {
        asPostgres('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
