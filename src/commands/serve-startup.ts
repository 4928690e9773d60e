// What `fanout serve` checks and tells around start-up, apart from the gateway itself:
// the TLS files before anything listens, the bus and the database (with --db-start eager)
// right after, each failure as one line with its fix; and, in a terminal, a banner with the
// URLs to open, where the keys come from and what is still starting.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { GatewayConfig } from '../core/config.js';
import { redactUrl } from '../core/log.js';
import { packageVersion } from '../core/version.js';
import type { Gateway } from '../server/gateway.js';
import { EXIT } from './exit-codes.js';
import { failure, type CommandFailure } from './failures.js';

/** How long a configured bus may take to connect before start-up is declared failed. */
const BUS_START_TIMEOUT_MS = 5000;

/** Reads the TLS certificate and key and checks they form a pair, before the gateway is built. */
export function checkTlsFiles(config: GatewayConfig): void {
  if (!config.tlsCert || !config.tlsKey) return;
  const read = (path: string, option: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
      throw failure(`cannot read ${option} ${path} (${why})`, `give the path of a readable PEM file with ${option} or FANOUT_${option.slice(2).toUpperCase().replace('-', '_')}`, EXIT.usage, err);
    }
  };
  const cert = read(config.tlsCert, '--tls-cert');
  const key = read(config.tlsKey, '--tls-key');
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw failure(
      `--tls-cert ${config.tlsCert} and --tls-key ${config.tlsKey} are not a usable PEM certificate and matching private key (${(err as Error).message})`,
      'check that both are PEM files and that the key belongs to the certificate (openssl x509 -noout -pubkey -in CERT; openssl pkey -pubout -in KEY)',
      EXIT.usage,
      err,
    );
  }
}

/** Waits (bounded) for a configured Redis or NATS bus to connect; a bus that cannot be reached fails start-up. */
export async function waitForBus(gateway: Gateway): Promise<void> {
  const { bus, config } = gateway;
  if (!bus) return;
  const deadline = Date.now() + BUS_START_TIMEOUT_MS;
  while (!bus.connected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  if (bus.connected) return;
  const [url, option] = config.bus === 'redis' ? [redactUrl(config.redisUrl), '--redis-url or REDIS_URL'] : [config.natsUrl, '--nats-url or NATS_URL'];
  throw failure(
    `the ${config.bus} bus at ${url} is not reachable (${bus.detail})`,
    `start ${config.bus === 'redis' ? 'Redis' : 'NATS'} or correct ${option}; --bus memory runs a single gateway without one`,
    EXIT.setupFailed,
  );
}

/** What the database is, for the banner, the log and error messages. */
export function describeDatabase(config: GatewayConfig): { what: string; firstStart: boolean } {
  if (config.databaseUrl) return { what: `PostgreSQL at ${redactUrl(config.databaseUrl)}`, firstStart: false };
  const dir = join(config.dataDir, 'pglite');
  return { what: `the embedded database (PGlite) in ${dir}`, firstStart: !existsSync(join(dir, 'PG_VERSION')) };
}

/** The one line for a database that could not be opened at start-up. */
export function databaseFailure(config: GatewayConfig, err: unknown): CommandFailure {
  const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
  const { what } = describeDatabase(config);
  // Some reasons already end in their own fix (run `fanout migrate`, stop the other process).
  const fix = /fanout migrate|stop it first/.test(reason)
    ? 'or start with --db-start lazy to open it at first use'
    : config.databaseUrl
      ? 'check that PostgreSQL is running and that --database-url or DATABASE_URL is right, or start with --db-start lazy to open it at first use'
      : `check that ${config.dataDir} is writable and not used by another fanout, or start with --db-start lazy`;
  // The driver's own message may already say "cannot connect to PostgreSQL at …".
  return failure(/^cannot /.test(reason) ? reason : `cannot open ${what}: ${reason}`, fix, EXIT.setupFailed, err);
}

export interface BannerLines {
  url: string;
  tlsUrl: string | undefined;
  keys: string;
  database: string;
}

/** The banner's facts, also usable without a terminal (tests read them). */
export function bannerLines(gateway: Gateway): BannerLines {
  const { config, secret } = gateway;
  const dataDirFlag = `--data-dir ${config.dataDir}`;
  const keys =
    secret.origin === 'env'
      ? 'signed with FANOUT_JWT_SECRET; print them with `fanout keys` (with the same variable set)'
      : `signed with the development secret in ${secret.path}; print them with \`npx fanout keys ${dataDirFlag}\``;
  const db = describeDatabase(config);
  const database =
    config.dbStart === 'lazy'
      ? `${db.what}: opens at first use (--db-start lazy)`
      : `${db.what}: starting${db.firstStart ? ' (a first start initialises it, about 10 s)' : ''}; /readyz answers 503 until it is ready`;
  return { url: gateway.url, tlsUrl: gateway.tlsUrl, keys, database };
}

/** The start-up banner for a person at a terminal (stderr); logs stay on stdout. */
export function formatBanner(lines: BannerLines): string {
  const row = (label: string, value: string) => `  ${label.padEnd(10)} ${value}`;
  return [
    `Fanout ${packageVersion()} is listening on ${lines.url}${lines.tlsUrl ? ` and ${lines.tlsUrl} (HTTP/2)` : ''}`,
    row('demo', `${lines.url}/demo`),
    row('dashboard', `${lines.url}/dashboard  (paste the service_role key)`),
    row('metrics', `${lines.url}/metrics`),
    row('API', `${lines.url}/openapi.json`),
    row('keys', lines.keys),
    row('database', lines.database),
    '',
  ].join('\n');
}

/**
 * Follows the database's first open with --db-start eager: logs what is starting (so a 503
 * from /readyz has a reason in the log), reports when it is ready, and hands a failure to
 * `fail`. With --db-start lazy there is nothing to follow.
 */
export function followDatabaseStart(
  gateway: Gateway,
  open: (() => Promise<unknown>) | undefined,
  report: { ready: (line: string) => void; fail: (err: CommandFailure) => void },
): void {
  const { config, log } = gateway;
  if (config.dbStart !== 'eager' || !open) return;
  const { what, firstStart } = describeDatabase(config);
  const started = Date.now();
  log.info({ database: what, firstStart }, `opening ${what}${firstStart ? ' for the first time (initialising it takes about 10 s)' : ''}; /readyz answers 503 until it is open`);
  open().then(
    () => {
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      log.info({ database: what, seconds: Number(seconds) }, 'database ready');
      report.ready(`  database   ready: ${what} (${seconds} s)\n`);
    },
    (err: unknown) => report.fail(databaseFailure(config, err)),
  );
}
