// `fanout migrate`: installs (or updates) Fanout's database schema — Supabase's roles and
// realtime schema, realtime.send(), the supabase_realtime publication, change capture and
// the seed's project_comments table — in PostgreSQL (--database-url / DATABASE_URL) or in
// the embedded PGlite database under --data-dir. Safe to run again.
import type { Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/log.js';
import { DatabaseLockedError, openDatabase } from '../changes/database.js';
import { migrate } from '../changes/schema.js';
import { addGatewayOptions, configOrExit } from './options.js';

export function registerMigrateCommand(program: Command): void {
  const cmd = program
    .command('migrate')
    .description('install the realtime schema, the supabase_realtime publication and project_comments in the database (PGlite under --data-dir unless --database-url)')
    .option('--json', 'print the result as JSON');
  addGatewayOptions(cmd, ['dataDir', 'databaseUrl', 'logLevel']).action(async (flags: { json?: boolean } & Record<string, unknown>) => {
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
      if (flags.json) {
        process.stdout.write(JSON.stringify({ database: db.kind, location: db.location, ...result }) + '\n');
      } else {
        const what = result.applied.length ? `applied ${result.applied.map((m) => `${m.version} (${m.name})`).join(', ')}` : 'already up to date';
        console.log(`${db.kind} ${db.location}: ${what}; schema version ${result.version}`);
      }
    } catch (err) {
      console.error(`fanout migrate: migration failed on ${db.location}: ${(err as Error).message}`);
      process.exitCode = 1;
    } finally {
      await db.close();
    }
  });
}
