// A dedicated, throw-away PostgreSQL instance for the spike's failure scenario: the
// embedded gateway keeps its comments and change feed there, and "the database fails"
// means this instance is stopped with `pg_ctl stop -m immediate` (a crash, no clean
// shutdown) and later started again. It never touches the machine's shared PostgreSQL.
// PostgreSQL refuses to run as root, so as root the commands run as the `postgres` user.
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../load/embedded-gateway.js';
import { onInterrupt } from '../load/cleanup.js';

const run = promisify(execFile);

export interface DedicatedPostgres {
  url: string;
  port: number;
  dataDir: string;
  /** Crash-stops the server (immediate shutdown): clients see their connections reset. */
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

function findBinary(name: string): string | undefined {
  const candidates = [`/usr/local/bin/${name}`, `/usr/bin/${name}`];
  for (const v of ['17', '16', '15', '14', '13']) candidates.push(`/usr/lib/postgresql/${v}/bin/${name}`);
  return candidates.find((p) => existsSync(p));
}

/** Why a dedicated instance cannot be started here, or undefined when it can. */
export function dedicatedPostgresUnavailable(): string | undefined {
  if (!findBinary('initdb') || !findBinary('pg_ctl')) return 'PostgreSQL server binaries (initdb, pg_ctl) are not installed';
  if (process.getuid?.() === 0) {
    try {
      const out = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
      if (!out.trim()) return 'running as root and there is no postgres user to run PostgreSQL as';
    } catch {
      return 'running as root and there is no postgres user to run PostgreSQL as';
    }
  }
  return undefined;
}

async function asPostgres(bin: string, args: string[]): Promise<void> {
  if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', bin, ...args], { timeout: 60_000 });
  else await run(bin, args, { timeout: 60_000 });
}

export async function startDedicatedPostgres(): Promise<DedicatedPostgres> {
  const initdb = findBinary('initdb');
  const pgCtl = findBinary('pg_ctl');
  if (!initdb || !pgCtl) throw new Error('PostgreSQL server binaries (initdb, pg_ctl) are not installed');
  const root = mkdtempSync(join(tmpdir(), 'fanout-spike-pg-'));
  const dataDir = join(root, 'data');
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(root, Number(stdout.trim()), Number(gid.trim()));
  }
  await asPostgres(initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const opts = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_connections=200 -c fsync=off`;
  const start = (): Promise<void> => asPostgres(pgCtl, ['-D', dataDir, '-o', opts, '-l', join(root, 'log'), '-w', '-t', '60', 'start']);
  await start();
  let running = true;
  const destroy = async (): Promise<void> => {
    if (running) await asPostgres(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    running = false;
    rmSync(root, { recursive: true, force: true });
  };
  const unregister = onInterrupt(destroy);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    async stop() {
      if (!running) return;
      await asPostgres(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      running = false;
    },
    async start() {
      if (running) return;
      await start();
      running = true;
    },
    async destroy() {
      unregister();
      await destroy();
    },
  };
}
