// `fanout migrate`: installs (or updates) Fanout's database schema — Supabase's roles and
// realtime schema, realtime.send(), the supabase_realtime publication, change capture and
// the seed's project_comments table — in PostgreSQL (--database-url / DATABASE_URL) or in
// the embedded PGlite database under --data-dir. Safe to run again.
import type { Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/log.js';
import { DatabaseLockedError, openDatabase } from '../changes/database.js';
import { migrate } from '../changes/schema.js';
import { dropSlot, slotName, SlotBusyError } from '../changes/wal/slot.js';
import { addGatewayOptions, configOrExit } from './options.js';

export function registerMigrateCommand(program: Command): void {
  const cmd = program
    .command('migrate')
    .description(
      'install the realtime schema, the supabase_realtime publication and project_comments in the database (PGlite under --data-dir unless --database-url); capture triggers are kept only while some gateway reads the outbox',
    )
    .option('--json', 'print the result as JSON')
    .option('--drop-slot', 'drop the replication slot of --changes-consumer (fanout_<name>), e.g. one no gateway reads any more: PostgreSQL keeps WAL for a slot until it is read or dropped');
  addGatewayOptions(cmd, ['dataDir', 'databaseUrl', 'logLevel', 'changesConsumer']).action(async (flags: { json?: boolean; dropSlot?: boolean } & Record<string, unknown>) => {
    const config = await configOrExit('migrate', () => loadConfig(flags));
    const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, destination: process.stderr });
    let db;
    try {
      db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, log });
    } catch (err) {
      console.error(`fanout migrate: ${(err as Error).message}`);
      process.exit(err instanceof DatabaseLockedError ? 3 : 1);
    }
    try {
      const result = await migrate(db);
      let slot: { name: string; dropped: boolean } | undefined;
      if (flags.dropSlot) {
        if (db.kind !== 'postgres') throw new Error('--drop-slot needs PostgreSQL (--database-url): the embedded database has no replication slots');
        const name = slotName(config.changesConsumer);
        slot = { name, dropped: await dropSlot(db, name) };
        // The consumer no longer reads the WAL: nothing of it is left to finish.
        await db.query(`update realtime.fanout_cursor set wal_until = null where consumer = $1`, [config.changesConsumer]);
      }
      if (flags.json) {
        process.stdout.write(JSON.stringify({ database: db.kind, location: db.location, ...result, ...(slot ? { slot } : {}) }) + '\n');
      } else {
        const what = result.applied.length ? `applied ${result.applied.map((m) => `${m.version} (${m.name})`).join(', ')}` : 'already up to date';
        console.log(`${db.kind} ${db.location}: ${what}; schema version ${result.version}`);
        if (slot) console.log(slot.dropped ? `dropped the replication slot ${slot.name}` : `no replication slot ${slot.name} to drop`);
      }
    } catch (err) {
      const busy = err instanceof SlotBusyError;
      console.error(`fanout migrate: ${busy ? '' : `migration failed on ${db.location}: `}${(err as Error).message}${busy ? ' (stop that gateway first)' : ''}`);
      process.exitCode = 1;
    } finally {
      await db.close();
    }
  });
}
