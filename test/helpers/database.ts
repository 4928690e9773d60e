// A PostgreSQL database of the test's own on the machine's server (127.0.0.1:5432, trust
// auth): created with a random name, dropped (with its connections) afterwards, so test
// files running in parallel never share tables.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase } from '../../src/changes/database.js';
import { migrate } from '../../src/changes/schema.js';
import { createLogger } from '../../src/core/log.js';

export const POSTGRES_ADMIN_URL = process.env.FANOUT_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** `adminUrl`: another server than the machine's shared one (e.g. a WAL test server, test/helpers/wal-server.ts). */
export async function createTestDatabase(prefix = 'fanout_test', adminUrl = POSTGRES_ADMIN_URL): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await admin(adminUrl, (c) => c.query(`create database ${pg.escapeIdentifier(name)}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () =>
      admin(adminUrl, async (c) => {
        // Replication slots belong to the database: a database that has one cannot be dropped.
        await c.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1 and not active`, [name]);
        await c.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
      }),
  };
}

/** A test database with the realtime schema and the seed's tables installed, as `fanout migrate` does. */
export async function createMigratedDatabase(prefix?: string, adminUrl?: string): Promise<TestDatabase> {
  const db = await createTestDatabase(prefix, adminUrl);
  const handle = await openDatabase({ databaseUrl: db.url, dataDir: '/nonexistent', log: createLogger({ level: 'silent' }) });
  try {
    await migrate(handle);
  } finally {
    await handle.close();
  }
  return db;
}

async function admin(adminUrl: string, fn: (c: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await fn(client);
  } finally {
    await client.end();
  }
}
