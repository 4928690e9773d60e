// `fanout keys`: prints the project's anon and service_role keys (HS256 JWTs signed
// with the gateway secret), the values a Supabase client takes as its anon key.
import type { Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { Auth, loadSecret } from '../core/auth.js';
import { addGatewayOptions, configOrExit } from './options.js';

export function registerKeysCommand(program: Command): void {
  const cmd = program
    .command('keys')
    .description('print the anon and service_role keys signed with the gateway secret (FANOUT_JWT_SECRET or the development secret)')
    .option('--json', 'print {"anon": "...", "service_role": "..."}')
    .option('--user <id>', 'also print a one-hour token for an authenticated user with this id');
  addGatewayOptions(cmd, ['dataDir']).action(async (flags: { json?: boolean; user?: string } & Record<string, unknown>) => {
    const config = await configOrExit('keys', () => loadConfig(flags));
    const secret = loadSecret(config.jwtSecret, config.dataDir);
    const auth = new Auth(secret.secret);
    const keys: Record<string, string> = { ...(await auth.projectKeys()) };
    if (flags.user) keys.user = await auth.userToken(flags.user);
    if (secret.created) console.error(`generated a development secret in ${secret.path} (set FANOUT_JWT_SECRET in production)`);
    if (flags.json) {
      process.stdout.write(JSON.stringify(keys) + '\n');
      return;
    }
    for (const [name, value] of Object.entries(keys)) console.log(`${name.padEnd(13)} ${value}`);
  });
}
