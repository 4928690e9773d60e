// The coordinator's side of the worker processes: forks them (the compiled worker from
// dist/, or the TypeScript source through tsx's loader; see core/module-files.ts), hands each a
// plan, relays their messages, and guarantees they exit — a worker also exits on its own
// when the coordinator's IPC channel closes.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loaderArgs, siblingModule } from '../core/module-files.js';
import type { CoordinatorMessage, WorkerMessage } from './plan.js';

const WORKER_FILE = fileURLToPath(siblingModule(import.meta.url, 'worker'));

/** Most sockets one generator process may hold: the machine allows 20,000 open files per process. */
export const MAX_SOCKETS_PER_WORKER = 18_000;

export type WorkerListener = (msg: WorkerMessage) => void;

export class WorkerPool {
  private readonly children: ChildProcess[] = [];
  private listener: WorkerListener | undefined;
  private closed = false;

  private constructor(readonly size: number) {}

  static async start(size: number): Promise<WorkerPool> {
    const pool = new WorkerPool(size);
    await Promise.all(Array.from({ length: size }, (_, i) => pool.spawn(i)));
    return pool;
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid ?? 0);
  }

  private spawn(index: number): Promise<void> {
    const child = fork(WORKER_FILE, [], {
      execArgv: [...loaderArgs(import.meta.url), '--max-old-space-size=1024'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    this.children[index] = child;
    return new Promise((resolve, reject) => {
      const onReady = (msg: WorkerMessage): void => {
        if (msg.type !== 'ready') return;
        child.off('message', onReady);
        child.off('exit', onEarlyExit);
        child.on('message', (m: WorkerMessage) => this.listener?.(m));
        resolve();
      };
      const onEarlyExit = (code: number | null): void => reject(new Error(`load worker ${index} exited with code ${code} before it was ready`));
      child.on('message', onReady);
      child.once('exit', onEarlyExit);
      child.on('exit', (code) => {
        if (!this.closed) this.listener?.({ type: 'fatal', worker: index, message: `worker process exited unexpectedly (code ${code})` });
      });
    });
  }

  onMessage(listener: WorkerListener): void {
    this.listener = listener;
  }

  send(index: number, msg: CoordinatorMessage): void {
    const child = this.children[index];
    if (child?.connected) child.send(msg);
  }

  broadcast(msg: CoordinatorMessage): void {
    for (let i = 0; i < this.children.length; i++) this.send(i, msg);
  }

  /** Waits until every worker has sent a message of `type` (optionally matching), or rejects after `timeoutMs`. */
  collect<T extends WorkerMessage['type']>(type: T, timeoutMs: number): Promise<Extract<WorkerMessage, { type: T }>[]> {
    return new Promise((resolve, reject) => {
      const got: Extract<WorkerMessage, { type: T }>[] = [];
      const prev = this.listener;
      const timer = setTimeout(() => {
        this.listener = prev;
        reject(new Error(`timed out after ${timeoutMs} ms waiting for "${type}" from ${this.size - got.length} of ${this.size} load workers`));
      }, timeoutMs);
      this.listener = (msg) => {
        prev?.(msg);
        if (msg.type === 'fatal') {
          clearTimeout(timer);
          this.listener = prev;
          reject(new Error(`load worker ${msg.worker} failed: ${msg.message}`));
          return;
        }
        if (msg.type !== type) return;
        got.push(msg as Extract<WorkerMessage, { type: T }>);
        if (got.length === this.size) {
          clearTimeout(timer);
          this.listener = prev;
          resolve(got);
        }
      };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
            child.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            if (child.connected) child.send({ type: 'exit' } satisfies CoordinatorMessage);
            else child.kill('SIGTERM');
          }),
      ),
    );
  }
}
