// `fanout keys`: prints the project's anon and service_role keys (and optionally a user
// token), the values a Supabase client takes as its anon key. Signed with the gateway's
// shared secret (HS256), or with a private key (`--private-key`) for a gateway that
// verifies asymmetric tokens through `--jwt-jwks`; `--generate-key` makes such a key pair.
// The secret is resolved exactly as `fanout serve` resolves it (FANOUT_JWT_SECRET, else
// <data-dir>/jwt-secret) but never created here: a new secret would sign keys the running
// gateway rejects. Where the secret came from goes to stderr, so `--json` stays machine-readable.
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { Auth, loadSecret, SecretError } from '../core/auth.js';
import { ASYMMETRIC_ALGORITHMS } from '../core/jwt-keys.js';
import { generateSigningKey, loadSigningKey, type SigningKey } from '../core/jwt-signing.js';
import { EXIT } from './exit-codes.js';
import { addGatewayOptions, configOrExit } from './options.js';
import { failure, runCommand } from './failures.js';

interface KeysFlags {
  json?: boolean;
  user?: string;
  privateKey?: string;
  generateKey?: string;
  keyDir?: string;
  alg?: string;
  kid?: string;
}

export function registerKeysCommand(program: Command): void {
  const cmd = program
    .command('keys')
    .description("print the anon and service_role keys, signed with the gateway's secret (FANOUT_JWT_SECRET, else the development secret in --data-dir, which `fanout serve` generates) or with a private key")
    .option('--json', 'print {"anon": "...", "service_role": "..."} (and "user", "kid", "alg")')
    .option('--user <id>', 'also print a one-hour token for an authenticated user with this id')
    .option('--private-key <file>', 'sign with this private key instead of the secret: a private JWK (JSON with "d") or a PKCS#8 PEM; verifiers need its public key in --jwt-jwks')
    .option('--alg <alg>', `signing algorithm for --private-key or --generate-key (${ASYMMETRIC_ALGORITHMS.join(', ')}); default: the JWK's alg, else RS256 for RSA, ES256/384/512 by curve, EdDSA for Ed25519`)
    .option('--kid <id>', "key id written into the token header; default: the JWK's kid, else its RFC 7638 thumbprint")
    .option('--generate-key <alg>', 'make a new key pair: write <kid>.private.jwk.json and add its public key to jwks.json in --key-dir (keeping the keys already there, for rotation), then sign with it')
    .option('--key-dir <dir>', 'directory for --generate-key (default: <data-dir>/jwt-keys)');
  cmd.addHelpText(
    'after',
    `
Examples:
  fanout keys                                   # HS256 keys from FANOUT_JWT_SECRET or the development secret
  fanout keys --generate-key ES256              # new ES256 key pair in .fanout/jwt-keys/, keys signed with it
  fanout serve --jwt-jwks .fanout/jwt-keys/jwks.json
  fanout keys --private-key .fanout/jwt-keys/<kid>.private.jwk.json --user u1`,
  );
  addGatewayOptions(cmd, ['dataDir']).action(async (flags: KeysFlags & Record<string, unknown>) => {
    const config = await configOrExit('keys', () => loadConfig(flags));
    if (flags.privateKey && flags.generateKey) return usage('--private-key and --generate-key cannot be used together');
    let signingKey: SigningKey | undefined;
    let generated: Awaited<ReturnType<typeof generateSigningKey>> | undefined;
    try {
      if (flags.generateKey) {
        generated = await generateSigningKey(flags.keyDir ?? `${config.dataDir}/jwt-keys`, flags.generateKey, flags.kid);
        signingKey = await loadSigningKey(generated.privateKeyPath);
      } else if (flags.privateKey) {
        signingKey = await loadSigningKey(flags.privateKey, { alg: flags.alg, kid: flags.kid });
      }
    } catch (err) {
      return usage((err as Error).message);
    }
    await runCommand('keys', async () => {
      // Signing with a private key needs no secret; otherwise the gateway's own, never a new one.
      let secret: ReturnType<typeof loadSecret> | undefined;
      if (!signingKey) {
        try {
          secret = loadSecret(config.jwtSecret, config.dataDir, { create: false });
        } catch (err) {
          if (err instanceof SecretError) throw failure(err.message, err.fix, EXIT.setupFailed, err);
          throw err;
        }
      }
      const auth = new Auth(secret?.secret ?? randomBytes(32).toString('base64url'), { signingKey });
      const keys: Record<string, string> = { ...(await auth.projectKeys()) };
      if (flags.user) keys.user = await auth.userToken(flags.user);
      if (secret) {
        console.error(
          secret.origin === 'env'
            ? 'fanout keys: signed with FANOUT_JWT_SECRET (a gateway accepts them only with the same FANOUT_JWT_SECRET)'
            : `fanout keys: signed with the development secret in ${secret.path} (a gateway accepts them only with --data-dir ${config.dataDir} and no FANOUT_JWT_SECRET)`,
        );
      }
      if (generated) {
        console.error(`wrote the private key ${generated.privateKeyPath} (kid ${generated.kid}, ${generated.alg})`);
        console.error(`added its public key to ${generated.jwksPath} (now ${generated.kids.length} keys); start the gateway with --jwt-jwks ${generated.jwksPath}`);
      }
      if (flags.json) {
        const meta = signingKey ? { kid: signingKey.kid ?? '', alg: signingKey.alg } : {};
        process.stdout.write(JSON.stringify({ ...keys, ...meta }) + '\n');
        return;
      }
      for (const [name, value] of Object.entries(keys)) console.log(`${name.padEnd(13)} ${value}`);
    });
  });
}

/** A bad key file or flag combination: exit code 2 with the reason, like a bad flag. */
function usage(message: string): never {
  console.error(`fanout keys: ${message}`);
  process.exit(EXIT.usage);
}
