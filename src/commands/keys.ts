// `fanout keys`: prints the project's anon and service_role keys (HS256 JWTs signed with
// the gateway secret), the values a Supabase client takes as its anon key. The secret is
// resolved exactly as `fanout serve` resolves it (FANOUT_JWT_SECRET, else <data-dir>/jwt-secret)
// but never created here: a new secret would sign keys the running gateway rejects.
// Where the secret came from goes to stderr, so `--json` output stays machine-readable.
import type { Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { addGatewayOptions, configOrExit } from './options.js';
import { EXIT } from './exit-codes.js';
import { failure, runCommand } from './failures.js';

export function registerKeysCommand(program: Command): void {
  const cmd = program
    .command('keys')
    .description("print the anon and service_role keys, signed with the gateway's secret: FANOUT_JWT_SECRET, else the development secret in --data-dir (which `fanout serve` generates)")
    .option('--json', 'print {"anon": "...", "service_role": "..."} (and "user" with --user)')
    .option('--user <id>', 'also print a one-hour token for an authenticated user with this id');
  addGatewayOptions(cmd, ['dataDir']).action(async (flags: { json?: boolean; user?: string } & Record<string, unknown>) => {
    const config = await configOrExit('keys', () => loadConfig(flags));
    await runCommand('keys', async () => {
      const { Auth, SecretError, loadSecret } = await import('../core/auth.js');
      let secret;
      try {
        secret = loadSecret(config.jwtSecret, config.dataDir, { create: false });
      } catch (err) {
        if (err instanceof SecretError) throw failure(err.message, err.fix, EXIT.setupFailed, err);
        throw err;
      }
      const auth = new Auth(secret.secret);
      const keys: Record<string, string> = { ...(await auth.projectKeys()) };
      if (flags.user) keys.user = await auth.userToken(flags.user);
      console.error(
        secret.origin === 'env'
          ? 'fanout keys: signed with FANOUT_JWT_SECRET (a gateway accepts them only with the same FANOUT_JWT_SECRET)'
          : `fanout keys: signed with the development secret in ${secret.path} (a gateway accepts them only with --data-dir ${config.dataDir} and no FANOUT_JWT_SECRET)`,
      );
      if (flags.json) {
        process.stdout.write(JSON.stringify(keys) + '\n');
        return;
      }
      for (const [name, value] of Object.entries(keys)) console.log(`${name.padEnd(13)} ${value}`);
    });
  });
}
