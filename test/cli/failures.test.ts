// Every failure a user can cause at start-up ends in one line on stderr naming the cause
// and the fix, and an exit code from src/commands/exit-codes.ts: 2 for a bad flag,
// variable or file, 4 for a set-up that failed. Real processes, real sockets, real PostgreSQL.
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jwtVerify } from 'jose';
import { runFanout } from '../helpers/cli.js';
import { TEST_SECRET, startGateway } from '../helpers/gateway.js';
import { createTestDatabase } from '../helpers/database.js';
import { freePort } from '../../src/load/embedded-gateway.js';
import { loadSecret } from '../../src/core/auth.js';
import { packageVersion } from '../../src/core/version.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-cli-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** `fanout serve` on a free port with a secret, no database unless asked; a server that does start is killed at the timeout. */
const serve = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runFanout(['serve', '--data-dir', tempDir(), '--db-start', 'lazy', ...args], { env: { FANOUT_JWT_SECRET: TEST_SECRET, FANOUT_LOG_LEVEL: 'warn', ...env }, timeoutMs: 20_000 });

describe('fanout serve refuses to start, in one line', () => {
  it('on a port already in use (4), naming the address and the option to change', async () => {
    const port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
    try {
      const r = await serve(['--port', String(port)]);
      expect(r.code).toBe(4);
      expect(r.firstLine).toBe(
        `fanout serve: 127.0.0.1:${port} is already in use (another fanout, or another server): stop that process (\`ss -ltnp 'sport = :${port}'\` shows it) or choose another port with --port or PORT`,
      );
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      holder.close();
    }
  });

  it('on a host that does not resolve (2)', async () => {
    const r = await serve(['--port', '0'], { FANOUT_HOST: 'not_a_host' });
    expect(r.code).toBe(2);
    expect(r.firstLine).toMatch(/^fanout serve: cannot resolve the host "not_a_host" given by --host or FANOUT_HOST: use an address \(127\.0\.0\.1/);
  });

  it('on an address that is not this machine’s (2)', async () => {
    const r = await serve(['--port', '0', '--host', '192.0.2.1']);
    expect(r.code).toBe(2);
    expect(r.firstLine).toMatch(/^fanout serve: the address 192\.0\.2\.1 \(--host or FANOUT_HOST\) is not one of this machine's: /);
  });

  it('on a TLS file it cannot read (2), and on files that are not a certificate and its key (2)', async () => {
    const dir = tempDir();
    const missing = await serve(['--port', '0', '--tls-cert', join(dir, 'nope.pem'), '--tls-key', join(dir, 'nope.key')]);
    expect(missing.code).toBe(2);
    expect(missing.firstLine).toBe(`fanout serve: cannot read --tls-cert ${join(dir, 'nope.pem')} (no such file): give the path of a readable PEM file with --tls-cert or FANOUT_TLS_CERT`);
    writeFileSync(join(dir, 'cert.pem'), 'not a certificate\n');
    writeFileSync(join(dir, 'key.pem'), 'not a key\n');
    const garbage = await serve(['--port', '0', '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
    expect(garbage.code).toBe(2);
    expect(garbage.firstLine).toMatch(/^fanout serve: --tls-cert .*cert\.pem and --tls-key .*key\.pem are not a usable PEM certificate and matching private key \(.+\): check that/);
  });

  it('on a PostgreSQL it cannot reach with --db-start eager (4), without printing the password', async () => {
    const url = `postgres://someone:hunter2@127.0.0.1:${await freePort()}/nowhere`;
    const r = await serve(['--port', '0', '--db-start', 'eager', '--database-url', url]);
    expect(r.code).toBe(4);
    expect(r.firstLine).toMatch(/^fanout serve: cannot connect to PostgreSQL at postgres:\/\/someone:\*\*\*@127\.0\.0\.1:\d+\/nowhere: connect ECONNREFUSED .*: check that PostgreSQL is running and that --database-url or DATABASE_URL is right, or start with --db-start lazy/);
    expect(r.stderr).not.toContain('hunter2');
  });

  it('on a database without Fanout’s schema with --db-start eager (4), pointing to fanout migrate', async () => {
    const db = await createTestDatabase('fanout_cli');
    try {
      const r = await serve(['--port', '0', '--db-start', 'eager', '--database-url', db.url]);
      expect(r.code).toBe(4);
      expect(r.firstLine).toMatch(/^fanout serve: cannot open PostgreSQL at .*does not have Fanout's realtime schema: run `fanout migrate` with the same --database-url: or start with --db-start lazy/);
    } finally {
      await db.drop();
    }
  });

  it('on a Redis bus it cannot reach (4)', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const r = await serve(['--port', '0', '--bus', 'redis', '--redis-url', url]);
    expect(r.code).toBe(4);
    expect(r.firstLine).toMatch(new RegExp(`^fanout serve: the redis bus at ${url.replace(/[./]/g, '\\$&')}/? is not reachable \\(.*\\): start Redis or correct --redis-url or REDIS_URL; --bus memory runs a single gateway without one$`));
  });

  it('on a bad secret: too short in the environment (2), or a damaged development secret file (4)', async () => {
    const short = await serve(['--port', '0'], { FANOUT_JWT_SECRET: 'short' });
    expect(short.code).toBe(2);
    expect(short.firstLine).toBe('fanout serve: invalid configuration: environment variable FANOUT_JWT_SECRET="short": must be at least 32 characters');
    const dataDir = tempDir();
    writeFileSync(join(dataDir, 'jwt-secret'), 'too-short\n');
    const r = await runFanout(['serve', '--port', '0', '--data-dir', dataDir, '--db-start', 'lazy'], { env: { FANOUT_JWT_SECRET: '' }, timeoutMs: 20_000 });
    expect(r.code).toBe(4);
    expect(r.firstLine).toBe(`fanout serve: the development secret in ${join(dataDir, 'jwt-secret')} is shorter than 32 characters: delete the file to have the gateway generate a new one (keys signed with the old one stop working)`);
  });

  it('on an unknown option or command (2), like every other command', async () => {
    for (const args of [['serve', '--no-such-flag'], ['keys', '--no-such-flag'], ['migrate', '--no-such-flag'], ['alerts', '--no-such-flag'], ['no-such-command']]) {
      const r = await runFanout(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.firstLine).toMatch(/^error: unknown (option '--no-such-flag'|command 'no-such-command')/);
    }
  });
});

describe('fanout keys', () => {
  it('refuses to invent a secret the gateway does not have (4), naming where it looked', async () => {
    const dataDir = tempDir();
    const r = await runFanout(['keys', '--data-dir', dataDir], { env: { FANOUT_JWT_SECRET: '' } });
    expect(r.code).toBe(4);
    expect(r.firstLine).toBe(
      `fanout keys: no secret to sign keys with: FANOUT_JWT_SECRET is not set and ${join(dataDir, 'jwt-secret')} does not exist: give the --data-dir (or FANOUT_DATA_DIR) the gateway uses, or set the FANOUT_JWT_SECRET it uses; \`fanout serve\` generates ${join(dataDir, 'jwt-secret')} on its first start`,
    );
    expect(r.stdout).toBe('');
  });

  it('signs with the secret the gateway made in the same data directory, and says so', async () => {
    const dataDir = tempDir();
    const secret = loadSecret(undefined, dataDir); // what `fanout serve` does on its first start
    const r = await runFanout(['keys', '--json', '--user', 'alice'], { env: { FANOUT_JWT_SECRET: '', FANOUT_DATA_DIR: dataDir } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.firstLine).toBe(`fanout keys: signed with the development secret in ${join(dataDir, 'jwt-secret')} (a gateway accepts them only with --data-dir ${dataDir} and no FANOUT_JWT_SECRET)`);
    const keys = JSON.parse(r.stdout) as Record<string, string>;
    const key = new TextEncoder().encode(secret.secret);
    expect((await jwtVerify(keys.service_role!, key)).payload.role).toBe('service_role');
    expect((await jwtVerify(keys.user!, key)).payload.sub).toBe('alice');
  });

  it('says when it signs with FANOUT_JWT_SECRET', async () => {
    const r = await runFanout(['keys', '--json', '--data-dir', tempDir()], { env: { FANOUT_JWT_SECRET: TEST_SECRET } });
    expect(r.code).toBe(0);
    expect(r.firstLine).toMatch(/^fanout keys: signed with FANOUT_JWT_SECRET/);
    const keys = JSON.parse(r.stdout) as Record<string, string>;
    expect((await jwtVerify(keys.anon!, new TextEncoder().encode(TEST_SECRET))).payload.role).toBe('anon');
  });
});

describe('a key from another secret', () => {
  it('gets a 401 that says the key was signed with a different secret, and what to do', async () => {
    const gw = await startGateway({});
    try {
      const otherDir = tempDir();
      loadSecret(undefined, otherDir); // another gateway's development secret
      const r = await runFanout(['keys', '--json', '--data-dir', otherDir], { env: { FANOUT_JWT_SECRET: '' } });
      const keys = JSON.parse(r.stdout) as Record<string, string>;
      const res = await fetch(`${gw.url}/api/content/anything`, { headers: { authorization: `Bearer ${keys.service_role}` } });
      expect(res.status).toBe(401);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('invalid_token');
      expect(body.error.message).toMatch(/^Failed to validate JWT signature: the key was signed with a different secret than this gateway's .*`fanout keys` run with the gateway's settings/);
    } finally {
      await gw.stop();
    }
  });
});

describe('fanout --version', () => {
  it('prints the package version and exits 0', async () => {
    const r = await runFanout(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(packageVersion());
  });
});
