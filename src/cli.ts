// The `fanout` command line. Each subcommand lives in src/commands/; this file only wires them.
import { Command } from 'commander';
import { registerServeCommand } from './commands/serve.js';
import { registerKeysCommand } from './commands/keys.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerLoadCommand } from './commands/load.js';
import { registerSpikeCommand } from './commands/spike.js';
import { registerReportCommand } from './commands/report.js';
import { registerAlertsCommand } from './commands/alerts.js';
import { exitTwoOnUsageErrors } from './commands/failures.js';
import { packageVersion } from './core/version.js';

const program = new Command('fanout')
  .description('Fanout: a self-hosted real-time gateway (SSE progress streams + Supabase Realtime) and the lab that measures it')
  .version(packageVersion(), '-V, --version', 'print the version')
  .showHelpAfterError('(run with --help for usage)');
// Set before the commands are added, so each inherits it (exit code 2 for bad usage).
exitTwoOnUsageErrors(program);

registerServeCommand(program);
registerKeysCommand(program);
registerMigrateCommand(program);
registerLoadCommand(program);
registerSpikeCommand(program);
registerReportCommand(program);
registerAlertsCommand(program);

await program.parseAsync(process.argv);
