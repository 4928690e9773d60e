// `fanout load agent --listen host:port`: a load generator on another machine. It waits for
// a coordinator (`fanout load … --agents host:port`), checks that it holds the shared
// token, starts its worker processes for that session and relays between them and the
// coordinator — the coordinator plans, merges and judges exactly as it does with local
// workers. One coordinator at a time; when it disconnects the workers end (their sockets
// with them) and the agent waits for the next. The agent applies the same safety rule as
// every load run: it only loads loopback targets unless started with --allow-remote.
import { createServer, type Server, type Socket } from 'node:net';
import { cpus, hostname } from 'node:os';
import { AGENT_PROTOCOL_VERSION, nonce, proof, readLines, verifyProof, writeLine, type ToAgent } from './agent-protocol.js';
import { wallClock } from './clock.js';
import { LocalWorkers } from './pool.js';
import { checkTarget } from './target.js';
import type { CoordinatorMessage, WorkerPlan } from './plan.js';

export interface AgentOptions {
  host: string;
  port: number;
  token: string;
  /** Worker processes per session. */
  workers: number;
  /** Accept plans whose target is not on loopback. */
  allowRemote: boolean;
  log(line: string): void;
  /** How long a connecting coordinator has to authenticate. */
  authTimeoutMs?: number;
}

export interface RunningAgent {
  /** host:port it listens on (the port is the real one when 0 was asked for). */
  address: string;
  close(): Promise<void>;
}

/** The targets a plan would load, each checked against the loopback rule; throws naming the first refused one. */
export function checkPlanTargets(plan: WorkerPlan, allowRemote: boolean): void {
  const urls = new Set<string>();
  for (const c of plan.sse?.connections ?? []) urls.add(new URL(c.url).origin);
  if (plan.realtime) {
    urls.add(new URL(plan.realtime.wsUrl).origin);
    urls.add(new URL(plan.realtime.httpUrl).origin);
  }
  for (const u of urls) checkTarget(u, { allowRemote });
}

/** One coordinator's session: its socket and the worker processes started for it. */
class Session {
  private workers: LocalWorkers | undefined;
  private ended = false;

  constructor(
    private readonly socket: Socket,
    private readonly opts: AgentOptions,
    private readonly onEnd: () => void,
  ) {}

  get peer(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  /** Challenge, verify, start the workers, welcome; then relay until the coordinator hangs up. */
  begin(): void {
    const socket = this.socket;
    const challenge = nonce();
    let authed = false;
    const authTimer = setTimeout(() => this.refuse('no authentication within the time allowed'), this.opts.authTimeoutMs ?? 15_000);
    socket.on('error', () => void this.end());
    socket.on('close', () => void this.end());
    readLines(
      socket,
      (raw) => {
        const msg = raw as ToAgent;
        if (!authed) {
          if (msg.type !== 'auth' || !verifyProof(this.opts.token, 'coordinator', challenge, msg.mac)) return this.refuse('the token does not match this agent’s');
          authed = true;
          clearTimeout(authTimer);
          void this.welcome(typeof msg.nonce === 'string' ? msg.nonce : '');
          return;
        }
        this.relay(msg);
      },
      (why) => this.refuse(`sent ${why}`),
    );
    writeLine(socket, { type: 'challenge', nonce: challenge, version: AGENT_PROTOCOL_VERSION });
  }

  private refuse(reason: string): void {
    if (this.ended) return;
    this.opts.log(`refused ${this.peer}: ${reason}`);
    writeLine(this.socket, { type: 'refused', reason });
    this.socket.end();
    void this.end();
  }

  private async welcome(coordinatorNonce: string): Promise<void> {
    try {
      // The workers inherit this process's environment (a simulated clock skew included).
      this.workers = await LocalWorkers.start(this.opts.workers);
    } catch (err) {
      return this.refuse(`could not start its workers: ${(err as Error).message}`);
    }
    if (this.ended) return void (await this.workers.close());
    this.workers.start({
      message: (m) => {
        // A worker that dies takes this agent's share of the run with it: the coordinator
        // must hear that as the agent's loss (the run is INVALID), not as a missing report.
        if (m.type === 'fatal') return this.lose(`worker ${m.worker} failed: ${m.message.split('\n')[0]}`);
        writeLine(this.socket, { type: 'from', msg: m });
      },
      lost: (reason) => this.lose(reason),
    });
    writeLine(this.socket, { type: 'welcome', mac: proof(this.opts.token, 'agent', coordinatorNonce), workers: this.opts.workers, cpus: cpus().length, host: hostname() });
    this.opts.log(`coordinator ${this.peer} connected: ${this.opts.workers} worker process(es) started`);
  }

  private relay(msg: ToAgent): void {
    switch (msg.type) {
      case 'ping':
        return writeLine(this.socket, { type: 'pong', id: msg.id, now: wallClock() });
      case 'to':
        if (!this.accept(msg.msg)) return;
        return this.workers?.send(msg.worker, msg.msg);
      case 'all':
        for (let i = 0; i < (this.workers?.size ?? 0); i++) this.workers!.send(i, msg.msg);
        return;
    }
  }

  /** A plan is only carried out against a target this agent may load. */
  private accept(msg: CoordinatorMessage): boolean {
    if (msg.type !== 'plan') return true;
    try {
      checkPlanTargets(msg.plan, this.opts.allowRemote);
      return true;
    } catch (err) {
      this.lose(`refused the plan: ${(err as Error).message}`);
      return false;
    }
  }

  private lose(reason: string): void {
    if (this.ended) return;
    this.opts.log(`session with ${this.peer} lost: ${reason}`);
    writeLine(this.socket, { type: 'lost', reason });
    this.socket.end();
    void this.end();
  }

  private async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (!this.socket.destroyed) this.socket.destroy();
    if (this.workers) {
      await this.workers.close();
      this.opts.log(`coordinator ${this.peer} gone: workers stopped, waiting for the next`);
    }
    this.onEnd();
  }

  async close(): Promise<void> {
    this.socket.destroy();
    await this.end();
  }
}

export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  let session: Session | undefined;
  const server: Server = createServer((socket) => {
    socket.setNoDelay(true);
    if (session) {
      opts.log(`refused ${socket.remoteAddress}:${socket.remotePort}: busy with another coordinator`);
      writeLine(socket, { type: 'refused', reason: 'busy: another coordinator is using this agent' });
      socket.end();
      return;
    }
    const s = new Session(socket, opts, () => {
      if (session === s) session = undefined;
    });
    session = s;
    s.begin();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen on ${opts.host}:${opts.port}: ${(err as { code?: string }).code === 'EADDRINUSE' ? 'the port is in use' : err.message}`, { cause: err })));
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  const address = typeof addr === 'object' && addr ? `${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}` : `${opts.host}:${opts.port}`;
  return {
    address,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await session?.close();
      await closed;
    },
  };
}
