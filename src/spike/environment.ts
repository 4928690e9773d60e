// Where a spike runs: a given loopback target (with shell commands that fail its
// database, when given), or an embedded gateway started as a child process on a dedicated
// PostgreSQL the spike can crash and restart for the failure scenario (the embedded
// database when no PostgreSQL can be started).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startEmbeddedGateway, type EmbeddedGateway } from '../load/embedded-gateway.js';
import type { Target } from '../load/target.js';
import { dedicatedPostgresUnavailable, startDedicatedPostgres, type DedicatedPostgres } from './postgres.js';

const exec = promisify(execFile);
const FANOUT_BIN = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));

/** The spike's options that say where it runs. */
export interface EnvironmentOptions {
  /** External target; when absent an embedded gateway is started. */
  target?: Target;
  /** Shell commands that stop and restart the external target's database (loopback targets only). */
  faultCommands?: { stop: string; start: string };
}

export interface Environment {
  target: Target;
  embedded?: EmbeddedGateway;
  db?: DedicatedPostgres;
  database: string;
  notes: string[];
  /** Stop and start the database; undefined when this target's database cannot be failed. */
  dbFault?: { stop(): Promise<void>; start(): Promise<void>; method: string };
}

async function gatewayMigrate(url: string): Promise<string> {
  try {
    await exec(process.execPath, [FANOUT_BIN, 'migrate'], { env: { ...process.env, DATABASE_URL: url }, timeout: 120_000 });
    return 'migrated with `fanout migrate`';
  } catch (err) {
    return `\`fanout migrate\` did not run (${((err as { stderr?: string }).stderr ?? (err as Error).message).split('\n')[0]})`;
  }
}

export async function prepareEnvironment(opts: EnvironmentOptions, log: (l: string) => void): Promise<Environment> {
  const notes: string[] = [];
  if (opts.target) {
    const env: Environment = { target: opts.target, database: 'the target’s own', notes };
    if (opts.faultCommands) {
      const cmds = opts.faultCommands;
      env.dbFault = { stop: async () => void (await exec('sh', ['-c', cmds.stop])), start: async () => void (await exec('sh', ['-c', cmds.start])), method: `\`${cmds.stop}\`, later \`${cmds.start}\`` };
    }
    return env;
  }
  let db: DedicatedPostgres | undefined;
  const why = dedicatedPostgresUnavailable();
  if (why) notes.push(`No dedicated PostgreSQL for the failure scenario: ${why}. The gateway uses its embedded database.`);
  else {
    log('starting a dedicated PostgreSQL for the failure scenario');
    db = await startDedicatedPostgres();
    notes.push(`Dedicated PostgreSQL on port ${db.port}: ${await gatewayMigrate(db.url)}.`);
  }
  log('starting the embedded gateway');
  let embedded: EmbeddedGateway;
  try {
    embedded = await startEmbeddedGateway({ env: db ? { DATABASE_URL: db.url } : {} });
  } catch (err) {
    await db?.destroy();
    throw err;
  }
  const env: Environment = { target: embedded.target, embedded, db, database: db ? `dedicated PostgreSQL (${db.url})` : 'embedded (PGlite)', notes };
  if (db) env.dbFault = { stop: () => db.stop(), start: () => db.start(), method: '`pg_ctl stop -m immediate` on the dedicated PostgreSQL (a crash), later `pg_ctl start`' };
  return env;
}
