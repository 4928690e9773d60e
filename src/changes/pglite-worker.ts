// The embedded PGlite database, run in a worker thread. PGlite is PostgreSQL compiled to
// WebAssembly: every statement executes synchronously on the thread that calls it, with
// synchronous file I/O. On the gateway's main thread that blocks every socket for the
// duration; here it only occupies this thread. The main thread talks to it with the
// messages below (see PgliteWorkerDatabase in database.ts).
//
// PGlite is one session: its own mutex serializes queries, and a transaction holds it from
// `begin` to `commit`/`rollback`, so queries from outside the transaction wait their turn.
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, type Transaction } from '@electric-sql/pglite';

export type WorkerRequest =
  | { id: number; type: 'query'; sql: string; params?: unknown[]; tx?: number }
  | { id: number; type: 'exec'; sql: string; tx?: number }
  | { id: number; type: 'begin' }
  | { id: number; type: 'end'; tx: number; commit: boolean }
  | { id: number; type: 'listen'; channel: string }
  | { id: number; type: 'close' };

export type WorkerReply =
  | { id: number; ok: true; result?: unknown }
  | { id: number; ok: false; error: { message: string; code?: string; detail?: string } }
  | { type: 'notify'; channel: string; payload: string }
  | { type: 'ready' }
  | { type: 'failed'; error: { message: string } };

const port = parentPort!;
/**
 * `init` runs initdb into a fresh directory and exits; `serve` opens the database and
 * answers queries. They are separate threads because initdb's WebAssembly instance keeps
 * hundreds of MB that are only returned when its thread ends.
 */
const { dir, mode } = workerData as { dir: string; mode: 'init' | 'serve' };

/**
 * The embedded database serves one gateway: PostgreSQL's default 128 MB of shared buffers
 * would be resident WebAssembly memory for data that fits in a few MB.
 */
const EMBEDDED_CONF = 'shared_buffers=16MB';

interface OpenTransaction {
  tx: Transaction;
  finish(commit: boolean): void;
  done: Promise<unknown>;
}

const transactions = new Map<number, OpenTransaction>();
let nextTx = 0;
let db: PGlite;

function fail(id: number, err: unknown): void {
  const e = err as { message?: string; code?: string; detail?: string };
  port.postMessage({ id, ok: false, error: { message: e.message ?? String(err), code: e.code, detail: e.detail } } satisfies WorkerReply);
}

function runner(tx?: number): Pick<Transaction, 'query' | 'exec'> {
  if (tx === undefined) return db;
  const open = transactions.get(tx);
  if (!open) throw new Error(`transaction ${tx} is not open`);
  return open.tx;
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.type) {
    case 'query': {
      const r = await runner(req.tx).query(req.sql, req.params);
      return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
    }
    case 'exec':
      await runner(req.tx).exec(req.sql);
      return undefined;
    case 'begin': {
      const id = ++nextTx;
      let finish!: (commit: boolean) => void;
      const ended = new Promise<boolean>((resolve) => (finish = resolve));
      let started!: (tx: Transaction) => void;
      const opened = new Promise<Transaction>((resolve) => (started = resolve));
      const done = db.transaction(async (tx) => {
        started(tx);
        if (!(await ended)) await tx.rollback();
      });
      // A failed BEGIN rejects `done` before the callback runs; errors otherwise surface on `end`.
      done.catch(() => undefined);
      const tx = await Promise.race([opened, done.then(() => Promise.reject(new Error('transaction could not start')))]);
      transactions.set(id, { tx, finish, done });
      return id;
    }
    case 'end': {
      const open = transactions.get(req.tx);
      if (!open) throw new Error(`transaction ${req.tx} is not open`);
      transactions.delete(req.tx);
      open.finish(req.commit);
      await open.done;
      return undefined;
    }
    case 'listen':
      await db.listen(req.channel, (payload) => port.postMessage({ type: 'notify', channel: req.channel, payload } satisfies WorkerReply));
      return undefined;
    case 'close':
      await db.close();
      return undefined;
  }
}

/**
 * A new database is created in a scratch directory and renamed into place once initdb has
 * finished, so a process stopped during its first start never leaves a half-made one.
 */
async function initialize(): Promise<void> {
  if (existsSync(join(dir, 'PG_VERSION'))) return;
  const scratch = `${dir}.init`;
  rmSync(scratch, { recursive: true, force: true });
  const fresh = new PGlite(scratch, { postgresqlconf: EMBEDDED_CONF });
  await fresh.waitReady;
  await fresh.close();
  rmSync(dir, { recursive: true, force: true });
  renameSync(scratch, dir);
}

try {
  if (mode === 'init') {
    await initialize();
    port.postMessage({ type: 'ready' } satisfies WorkerReply);
    process.exit(0);
  }
  db = new PGlite(dir, { postgresqlconf: EMBEDDED_CONF });
  await db.waitReady;
  await db.exec(`set timezone to 'UTC'`);
  port.on('message', (req: WorkerRequest) => {
    handle(req).then(
      (result) => port.postMessage({ id: req.id, ok: true, result } satisfies WorkerReply),
      (err: unknown) => fail(req.id, err),
    );
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
} catch (err) {
  port.postMessage({ type: 'failed', error: { message: (err as Error).message } } satisfies WorkerReply);
}
