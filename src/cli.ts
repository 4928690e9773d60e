// The `fanout` command line. Each subcommand lives in src/commands/; this file only wires them.
import { Command } from 'commander';
import { registerServeCommand } from './commands/serve.js';
import { registerKeysCommand } from './commands/keys.js';
import { registerMigrateCommand } from './commands/migrate.js';

const program = new Command('fanout')
  .description('Fanout: a self-hosted real-time gateway (SSE progress streams + Supabase Realtime) and the lab that measures it')
  .showHelpAfterError('(run with --help for usage)');

registerServeCommand(program);
registerKeysCommand(program);
registerMigrateCommand(program);

await program.parseAsync(process.argv);
