// `fanout migrate`: installs (or updates) Fanout's database schema — Supabase's roles and
// realtime schema, realtime.send(), the supabase_realtime publication, change capture and
// the seed's project_comments table — in PostgreSQL (--database-url / DATABASE_URL) or in
// the embedded PGlite database under --data-dir. Safe to run again.
import type { Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { addGatewayOptions, configOrExit } from './options.js';
import { EXIT } from './exit-codes.js';
import { failure, runCommand } from './failures.js';

export function registerMigrateCommand(program: Command): void {
  const cmd = program
    .command('migrate')
    .description('install the realtime schema, the supabase_realtime publication and project_comments in the database (PGlite under --data-dir unless --database-url)')
    .option('--json', 'print the result as JSON');
  addGatewayOptions(cmd, ['dataDir', 'databaseUrl', 'logLevel']).action(async (flags: { json?: boolean } & Record<string, unknown>) => {
    const config = await configOrExit('migrate', () => loadConfig(flags));
    await runCommand('migrate', async () => {
      // Loaded here, not at the top, so `fanout --help` does not load the database drivers.
      const [{ createLogger }, { DatabaseLockedError, openDatabase }, { migrate }] = await Promise.all([
        import('../core/log.js'),
        import('../changes/database.js'),
        import('../changes/schema.js'),
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
        if (flags.json) {
          process.stdout.write(JSON.stringify({ database: db.kind, location: db.location, ...result }) + '\n');
        } else {
          const what = result.applied.length ? `applied ${result.applied.map((m) => `${m.version} (${m.name})`).join(', ')}` : 'already up to date';
          console.log(`${db.kind} ${db.location}: ${what}; schema version ${result.version}`);
        }
      } catch (err) {
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
