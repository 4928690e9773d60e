// The coordinator's side of the generator: worker processes on this machine (forked as the
// compiled worker from dist/, or the TypeScript source through tsx's loader; see
// core/module-files.ts) and, with --agents, worker processes on other machines behind a
// `fanout load agent`. The pool numbers every worker globally, hands each a plan, relays
// their messages, measures each host's clock offset, notices a host that goes away, and
// guarantees the workers exit — a local worker also exits on its own when the
// coordinator's IPC channel closes, and an agent's when its coordinator disconnects.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loaderArgs, siblingModule } from '../core/module-files.js';
import type { CoordinatorMessage, WorkerMessage } from './plan.js';

const WORKER_FILE = fileURLToPath(siblingModule(import.meta.url, 'worker'));

/** Most sockets one generator process may hold: the machine allows 20,000 open files per process. */
export const MAX_SOCKETS_PER_WORKER = 18_000;

export type WorkerListener = (msg: WorkerMessage) => void;

/** What a host tells the pool. */
export interface HostEvents {
  message(msg: WorkerMessage): void;
  /** The host went away with all its workers (an agent's connection closed). */
  lost(reason: string): void;
}

/** A set of worker processes in one place: this machine, or one agent. */
export interface WorkerHost {
  /** `local`, or `agent <host:port>`. */
  readonly name: string;
  readonly size: number;
  /** This host's wall clock minus the coordinator's, and how sure that is (± ms). */
  readonly clock: { offsetMs: number; uncertaintyMs: number };
  start(events: HostEvents): void;
  send(localIndex: number, msg: CoordinatorMessage): void;
  /** Measures the clock offset again (before each run: clocks drift). */
  syncClock(): Promise<void>;
  close(): Promise<void>;
}

/** Worker processes forked on this machine. */
export class LocalWorkers implements WorkerHost {
  readonly name = 'local';
  readonly clock = { offsetMs: 0, uncertaintyMs: 0 };
  private readonly children: ChildProcess[] = [];
  private events: HostEvents | undefined;
  private closed = false;

  private constructor(readonly size: number) {}

  static async start(size: number): Promise<LocalWorkers> {
    const host = new LocalWorkers(size);
    try {
      await Promise.all(Array.from({ length: size }, (_, i) => host.spawn(i)));
    } catch (err) {
      await host.close();
      throw err;
    }
    return host;
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
        child.on('message', (m: WorkerMessage) => this.events?.message(m));
        resolve();
      };
      const onEarlyExit = (code: number | null): void => reject(new Error(`load worker ${index} exited with code ${code} before it was ready`));
      child.on('message', onReady);
      child.once('exit', onEarlyExit);
      child.on('exit', (code) => {
        if (!this.closed) this.events?.message({ type: 'fatal', worker: index, message: `worker process exited unexpectedly (code ${code})` });
      });
    });
  }

  start(events: HostEvents): void {
    this.events = events;
  }

  send(index: number, msg: CoordinatorMessage): void {
    const child = this.children[index];
    if (child?.connected) child.send(msg);
  }

  async syncClock(): Promise<void> {
    // Same clock.
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

/** One host's place in the pool, for results and error messages. */
export interface HostInfo {
  name: string;
  /** Global indices of its workers. */
  workers: number[];
  clockOffsetMs: number;
  clockUncertaintyMs: number;
  lost: string | null;
}

/**
 * Every worker of a run, local and remote, under one numbering: worker i of the pool is
 * worker i of the plans, whichever host runs it.
 */
export class WorkerPool {
  private listener: WorkerListener | undefined;
  private lostListener: ((host: HostInfo) => void) | undefined;
  private readonly offsets: number[] = [];
  private readonly lostReasons = new Map<WorkerHost, string>();
  readonly size: number;

  private constructor(private readonly hosts: readonly WorkerHost[]) {
    let n = 0;
    for (const h of hosts) {
      this.offsets.push(n);
      n += h.size;
    }
    this.size = n;
    hosts.forEach((h) =>
      h.start({
        message: (m) => this.listener?.(m),
        lost: (reason) => {
          if (this.lostReasons.has(h)) return;
          this.lostReasons.set(h, reason);
          this.lostListener?.(this.info(h));
        },
      }),
    );
  }

  /** Local worker processes only. */
  static async start(size: number): Promise<WorkerPool> {
    return new WorkerPool([await LocalWorkers.start(size)]);
  }

  /** Local workers (possibly none) and already connected agents. */
  static fromHosts(hosts: readonly WorkerHost[]): WorkerPool {
    if (!hosts.some((h) => h.size > 0)) throw new Error('a load run needs at least one generator worker (local --workers or an agent)');
    return new WorkerPool(hosts);
  }

  private locate(index: number): { host: WorkerHost; local: number } | undefined {
    for (let i = this.hosts.length - 1; i >= 0; i--) if (index >= this.offsets[i]!) return index - this.offsets[i]! < this.hosts[i]!.size ? { host: this.hosts[i]!, local: index - this.offsets[i]! } : undefined;
    return undefined;
  }

  private info(h: WorkerHost): HostInfo {
    const i = this.hosts.indexOf(h);
    return { name: h.name, workers: Array.from({ length: h.size }, (_, k) => this.offsets[i]! + k), clockOffsetMs: h.clock.offsetMs, clockUncertaintyMs: h.clock.uncertaintyMs, lost: this.lostReasons.get(h) ?? null };
  }

  /** Each host with its workers, clock offset and, if it went away, why. */
  hostInfo(): HostInfo[] {
    return this.hosts.filter((h) => h.size > 0).map((h) => this.info(h));
  }

  /** The host running worker `index` (its name), for messages that must say where a problem was. */
  hostName(index: number): string {
    return this.locate(index)?.host.name ?? 'unknown';
  }

  /** Worker `index`'s host clock minus the coordinator's. */
  clockOffsetOf(index: number): number {
    return this.locate(index)?.host.clock.offsetMs ?? 0;
  }

  /** True when worker `index`'s host went away. */
  isLost(index: number): boolean {
    const at = this.locate(index);
    return !!at && this.lostReasons.has(at.host);
  }

  get pids(): number[] {
    return this.hosts.flatMap((h) => (h instanceof LocalWorkers ? h.pids : []));
  }

  onMessage(listener: WorkerListener): void {
    this.listener = listener;
  }

  /** Called once per host that goes away. */
  onLost(listener: (host: HostInfo) => void): void {
    this.lostListener = listener;
  }

  async syncClocks(): Promise<void> {
    await Promise.all(this.hosts.filter((h) => !this.lostReasons.has(h)).map((h) => h.syncClock()));
  }

  send(index: number, msg: CoordinatorMessage): void {
    const at = this.locate(index);
    if (at && !this.lostReasons.has(at.host)) at.host.send(at.local, msg);
  }

  broadcast(msg: CoordinatorMessage): void {
    for (let i = 0; i < this.size; i++) this.send(i, msg);
  }

  /**
   * Waits until every worker whose host is still there has sent a message of `type`, or
   * rejects after `timeoutMs`; a worker's `fatal` rejects at once. A host that goes away
   * while waiting is no longer waited for (the run already knows it lost it).
   */
  collect<T extends WorkerMessage['type']>(type: T, timeoutMs: number): Promise<Extract<WorkerMessage, { type: T }>[]> {
    return new Promise((resolve, reject) => {
      const got = new Map<number, Extract<WorkerMessage, { type: T }>>();
      const prev = this.listener;
      const prevLost = this.lostListener;
      const finish = (): void => {
        clearTimeout(timer);
        this.listener = prev;
        this.lostListener = prevLost;
      };
      const check = (): void => {
        for (let i = 0; i < this.size; i++) if (!got.has(i) && !this.isLost(i)) return;
        finish();
        resolve([...got.values()]);
      };
      const timer = setTimeout(() => {
        finish();
        const missing = Array.from({ length: this.size }, (_, i) => i).filter((i) => !got.has(i) && !this.isLost(i));
        reject(new Error(`timed out after ${timeoutMs} ms waiting for "${type}" from ${missing.length} of ${this.size} load workers (${missing.map((i) => `${i} on ${this.hostName(i)}`).join(', ')})`));
      }, timeoutMs);
      this.listener = (msg) => {
        prev?.(msg);
        if (msg.type === 'fatal') {
          finish();
          reject(new Error(`load worker ${msg.worker} on ${this.hostName(msg.worker)} failed: ${msg.message}`));
          return;
        }
        if (msg.type !== type) return;
        got.set(msg.worker, msg as Extract<WorkerMessage, { type: T }>);
        check();
      };
      this.lostListener = (h) => {
        prevLost?.(h);
        check();
      };
      check();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.close()));
  }
}
