// One interface over the two databases the change feed runs on: a real PostgreSQL server
// (`DATABASE_URL`, through a small `pg` pool plus one dedicated LISTEN connection that
// reconnects by itself) and the embedded PGlite (PostgreSQL compiled to WebAssembly, data
// under `<dataDir>/pglite`, in a worker thread of this process). Everything above this file speaks plain SQL
// and is identical on both.
//
// Queries cast what they return to text, int4, float8, bool or jsonb, so both drivers
// hand back the same JavaScript values.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './pglite-worker.js';
import type { Logger } from '../core/log.js';
import { redactUrl, scrubSecrets } from '../core/log.js';
import { isCompiled } from '../core/module-files.js';

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Where it is, for logs (never with a password). */
  readonly location: string;
  /** Runs `fn` in one transaction on one connection: committed if it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Calls `onNotify` for each NOTIFY on `channel`, and `onConnected` each time the listening
   * connection is (re)established — anything may have been missed while it was down.
   */
  listen(channel: string, onNotify: () => void, onConnected: () => void): Promise<void>;
  close(): Promise<void>;
}

/** A PostgreSQL error with its SQLSTATE, from either driver. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * True when a query failed because the database could not be reached or went away
 * (connection refused or dropped, server shutting down) rather than because of the
 * statement: the caller should answer 503 and retry, not 500.
 */
export function isConnectionFailure(err: unknown): boolean {
  const code = sqlState(err);
  if (code && (code.startsWith('08') || code.startsWith('57P'))) return true;
  if (code && /^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|HOSTUNREACH|NOTFOUND)$/.test(code)) return true;
  const message = err instanceof Error ? err.message : '';
  return /Connection terminated|connection (is )?closed|Client has encountered a connection error|terminating connection/i.test(message);
}


/** Pool size: the feed needs one connection at a time; the rest serve joins and the comments API in parallel. */
const POOL_SIZE = 6;

class PostgresDatabase implements Database {
  readonly kind = 'postgres' as const;
  readonly location: string;
  private readonly pool: pg.Pool;
  private listener: pg.Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private retryListen: (() => void) | undefined;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {
    this.location = redactUrl(url);
    // Every session renders timestamps in UTC, so values normalized here compare equal to the
    // ones the capture trigger (which pins its own time zone) wrote.
    this.pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, idleTimeoutMillis: 10_000, options: '-c TimeZone=UTC', application_name: 'fanout' });
    this.pool.on('error', (err) => this.log.warn({ err: scrubSecrets(err.message) }, 'idle PostgreSQL connection failed'));
  }

  async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    const r = await this.pool.query(sql, params);
    return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('begin');
      const tx: Queryable = {
        query: async <R>(sql: string, params?: unknown[]) => {
          const r = await client.query(sql, params);
          return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
        },
      };
      const result = await fn(tx);
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  async listen(channel: string, onNotify: () => void, onConnected: () => void): Promise<void> {
    const connect = async (): Promise<void> => {
      if (this.closed) return;
      const client = new pg.Client({ connectionString: this.url, options: '-c TimeZone=UTC', application_name: 'fanout-listen' });
      const reconnect = (why: string) => {
        if (this.listener !== client) return;
        this.listener = undefined;
        client.removeAllListeners('notification');
        client.end().catch(() => undefined);
        if (this.closed) return;
        this.log.warn({ reason: why }, 'LISTEN connection to PostgreSQL lost; reconnecting in 1 s');
        this.retryListen?.();
      };
      client.on('error', (err) => reconnect(scrubSecrets(err.message)));
      client.on('end', () => reconnect('connection ended'));
      client.on('notification', (msg) => {
        if (msg.channel === channel) onNotify();
      });
      try {
        await client.connect();
        await client.query(`listen ${pg.escapeIdentifier(channel)}`);
      } catch (err) {
        client.removeAllListeners();
        client.on('error', () => undefined);
        await client.end().catch(() => undefined);
        throw err;
      }
      this.listener = client;
      onConnected();
    };
    const retryLater = (): void => {
      this.retry = setTimeout(() => {
        connect().catch((err: unknown) => {
          this.log.warn({ reason: scrubSecrets((err as Error).message) }, 'cannot re-establish LISTEN on PostgreSQL; retrying in 1 s');
          retryLater();
        });
      }, 1000);
    };
    this.retryListen = retryLater;
    await connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end();
  }
}

/**
 * The embedded PGlite database, in a worker thread (pglite-worker.ts) so its synchronous
 * WebAssembly execution and file I/O never stall the gateway's sockets.
 */
class PgliteWorkerDatabase implements Database {
  readonly kind = 'pglite' as const;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly listeners = new Map<string, () => void>();
  private dead: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly location: string,
    private readonly releaseLock: () => void,
  ) {
    worker.on('message', (msg: WorkerReply) => {
      if ('id' in msg) {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code, detail: msg.error.detail }));
      } else if (msg.type === 'notify') {
        this.listeners.get(msg.channel)?.();
      }
    });
    const die = (err: Error) => {
      this.dead ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => die(new Error(`the embedded database worker failed: ${err.message}`)));
    worker.on('exit', (code) => die(new Error(`the embedded database worker exited (code ${code})`)));
  }

  static async open(dir: string, releaseLock: () => void, signal?: AbortSignal): Promise<PgliteWorkerDatabase> {
    // A first start runs initdb in a thread of its own that then exits, returning its memory.
    if (!existsSync(join(dir, 'PG_VERSION'))) await PgliteWorkerDatabase.startWorker(dir, 'init', signal).then((w) => w.terminate());
    const worker = await PgliteWorkerDatabase.startWorker(dir, 'serve', signal);
    return new PgliteWorkerDatabase(worker, dir, releaseLock);
  }

  /** Starts a worker and waits for its `ready` (or its failure). */
  private static async startWorker(dir: string, mode: 'init' | 'serve', signal?: AbortSignal): Promise<Worker> {
    // From source, a boot file loads tsx first (worker threads do not inherit module hooks).
    const entry = isCompiled(import.meta.url) ? new URL('./pglite-worker.js', import.meta.url) : new URL('./pglite-worker-boot.js', import.meta.url);
    const worker = new Worker(entry, { workerData: { dir, mode } });
    // Stopping while the database starts (first start: initdb takes seconds) ends the
    // worker at once; a first start is made in a scratch directory, so nothing is left half-made.
    const stop = () => void worker.terminate();
    signal?.addEventListener('abort', stop, { once: true });
    let onMessage: (msg: WorkerReply) => void = () => undefined;
    let onError: (err: Error) => void = () => undefined;
    let onExit: (code: number) => void = () => undefined;
    const ready = await new Promise<WorkerReply>((resolve, reject) => {
      onMessage = resolve;
      onError = reject;
      onExit = (code) => reject(new Error(signal?.aborted ? 'opening the embedded database was cancelled' : `the embedded database worker exited (code ${code}) while opening ${dir}`));
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
    }).finally(() => {
      signal?.removeEventListener('abort', stop);
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    });
    if ('type' in ready && ready.type === 'failed') {
      await worker.terminate();
      throw new Error(`cannot open the embedded database ${dir}: ${ready.error.message}`);
    }
    return worker;
  }

  private call<T>(req: DistributiveOmit<WorkerRequest, 'id'>): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  query<R>(sql: string, params?: unknown[], tx?: number): Promise<QueryResult<R>> {
    return this.call<QueryResult<R>>({ type: 'query', sql, params, tx });
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const tx = await this.call<number>({ type: 'begin' });
    let result: T;
    try {
      result = await fn({ query: <R>(sql: string, params?: unknown[]) => this.query<R>(sql, params, tx) });
    } catch (err) {
      await this.call({ type: 'end', tx, commit: false }).catch(() => undefined);
      throw err;
    }
    await this.call({ type: 'end', tx, commit: true });
    return result;
  }

  async exec(sql: string): Promise<void> {
    await this.call({ type: 'exec', sql });
  }

  async listen(channel: string, onNotify: () => void, onConnected: () => void): Promise<void> {
    this.listeners.set(channel, onNotify);
    await this.call({ type: 'listen', channel });
    onConnected();
  }

  async close(): Promise<void> {
    try {
      if (!this.dead) await this.call({ type: 'close' });
    } finally {
      await this.worker.terminate();
      this.releaseLock();
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Thrown when another live process holds the embedded database. */
export class DatabaseLockedError extends Error {
  constructor(
    readonly path: string,
    readonly pid: number,
  ) {
    super(`the embedded database ${path} is in use by process ${pid} (PGlite allows one process at a time); stop it first`);
    this.name = 'DatabaseLockedError';
  }
}

/**
 * PGlite keeps the whole cluster in one process: two processes opening one data directory
 * would corrupt it. A pid file next to it keeps `fanout migrate` from opening the database
 * of a running `fanout serve`; a stale file (its process gone) is taken over.
 */
function lockEmbedded(dir: string): () => void {
  const path = `${dir}.lock`;
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) throw new DatabaseLockedError(dir, pid);
  } catch (err) {
    if (err instanceof DatabaseLockedError) throw err;
  }
  writeFileSync(path, `${process.pid}\n`);
  return () => rmSync(path, { force: true });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface OpenOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  log: Logger;
  /** Cancels opening (the gateway is shutting down). */
  signal?: AbortSignal;
}

/** Opens PostgreSQL when a URL is configured, otherwise the embedded PGlite under `<dataDir>/pglite`. */
export async function openDatabase({ databaseUrl, dataDir, log, signal }: OpenOptions): Promise<Database> {
  if (databaseUrl) {
    const db = new PostgresDatabase(databaseUrl, log);
    try {
      await db.query('select 1');
    } catch (err) {
      await db.close().catch(() => undefined);
      throw new Error(`cannot connect to PostgreSQL at ${db.location}: ${scrubSecrets((err as Error).message)}`, { cause: err });
    }
    return db;
  }
  const dir = join(dataDir, 'pglite');
  mkdirSync(dataDir, { recursive: true });
  const release = lockEmbedded(dir);
  try {
    return await PgliteWorkerDatabase.open(dir, release, signal);
  } catch (err) {
    release();
    throw err;
  }
}
