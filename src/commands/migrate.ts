// `fanout migrate`: installs (or updates) Fanout's database schema — Supabase's roles and
// realtime schema, realtime.send(), the supabase_realtime publication, change capture and
// the seed's project_comments table — in PostgreSQL (--database-url / DATABASE_URL) or in
// the embedded PGlite database under --data-dir. Safe to run again.
import type { Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { addGatewayOptions, configOrExit } from './options.js';
import { EXIT } from './exit-codes.js';
import { CommandFailure, failure, runCommand } from './failures.js';

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
    await runCommand('migrate', async () => {
      // Loaded here, not at the top, so `fanout --help` does not load the database drivers.
      const [{ createLogger }, { DatabaseLockedError, openDatabase }, { migrate }, { dropSlot, slotName, SlotBusyError }] = await Promise.all([
        import('../core/log.js'),
        import('../changes/database.js'),
        import('../changes/schema.js'),
        import('../changes/wal/slot.js'),
      ]);
      const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, destination: process.stderr });
      let db;
      try {
        db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, log });
      } catch (err) {
        const fix =
          err instanceof DatabaseLockedError
            ? 'stop that gateway (it migrates the embedded database itself when it starts), then run `fanout migrate` again'
            : config.databaseUrl
              ? 'check that PostgreSQL is running and that --database-url or DATABASE_URL is right'
              : `check that ${config.dataDir} is writable`;
        throw failure((err as Error).message, fix, EXIT.setupFailed, err);
      }
      try {
        const result = await migrate(db);
        let slot: { name: string; dropped: boolean } | undefined;
        if (flags.dropSlot) {
          if (db.kind !== 'postgres') throw failure('--drop-slot needs PostgreSQL', 'give --database-url: the embedded database has no replication slots', EXIT.usage);
          const name = slotName(config.changesConsumer);
          try {
            slot = { name, dropped: await dropSlot(db, name) };
          } catch (err) {
            if (err instanceof SlotBusyError) throw failure((err as Error).message, 'stop that gateway first', EXIT.setupFailed, err);
            throw err;
          }
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
        if (err instanceof CommandFailure) throw err;
        throw failure(
          `migration failed on ${db.location}: ${(err as Error).message.split('\n')[0]}`,
          'nothing was half-applied (each migration is one transaction); fix the cause above (often: the role lacks CREATE on the database) and run it again',
          EXIT.setupFailed,
          err,
        );
      } finally {
        await db.close();
      }
    });
  });
}
