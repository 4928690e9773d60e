// The coordinator's connection to one `fanout load agent`: authenticates with the shared
// token, learns how many workers the agent runs, measures the agent's clock offset from
// round trips (NTP-style, best of several, again before each run), relays plans and
// commands to the agent's workers and their ticks and finals back, and reports the agent
// lost when its connection closes before the coordinator closes it.
import { connect, type Socket } from 'node:net';
import { offsetSample } from './clock.js';
import { AGENT_PROTOCOL_VERSION, nonce, parseHostPort, proof, readLines, verifyProof, writeLine, type FromAgent } from './agent-protocol.js';
import { LocalWorkers, WorkerPool, type HostEvents, type WorkerHost } from './pool.js';
import type { CoordinatorMessage } from './plan.js';

/** The agent refused the token, or answered as something that is not an agent (exit 4: set-up failed). */
export class AgentRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentRefusedError';
  }
}

const CLOCK_SAMPLES = 8;

export class AgentHost implements WorkerHost {
  readonly name: string;
  size = 0;
  cpus = 0;
  readonly clock = { offsetMs: 0, uncertaintyMs: 0 };
  private events: HostEvents | undefined;
  private closing = false;
  private lostReason: string | undefined;
  private readonly pings = new Map<number, { sentAt: number; resolve(sample: { offsetMs: number; rttMs: number }): void }>();
  private nextPing = 0;

  private constructor(
    readonly address: string,
    private readonly socket: Socket,
  ) {
    this.name = `agent ${address}`;
  }

  /** Connects, authenticates both ways and measures the clock offset; rejects with a reason naming the agent. */
  static async connect(address: string, token: string, timeoutMs = 10_000): Promise<AgentHost> {
    const { host, port } = parseHostPort(address, '--agents entry');
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    const agent = new AgentHost(address, socket);
    await agent.handshake(token, timeoutMs);
    await agent.syncClock();
    return agent;
  }

  private handshake(token: string, timeoutMs: number): Promise<void> {
    const socket = this.socket;
    const ourNonce = nonce();
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error(`${this.name} did not complete the handshake within ${timeoutMs} ms`)), timeoutMs);
      socket.once('error', (err) => fail(new Error(`cannot reach ${this.name}: ${(err as { code?: string }).code ?? err.message}`, { cause: err })));
      socket.once('close', () => fail(new Error(`${this.name} closed the connection during the handshake`)));
      readLines(
        socket,
        (raw) => {
          const msg = raw as FromAgent;
          if (!settled) {
            if (msg.type === 'challenge') {
              if (msg.version !== AGENT_PROTOCOL_VERSION) return fail(new AgentRefusedError(`${this.name} speaks agent protocol ${msg.version}, this coordinator ${AGENT_PROTOCOL_VERSION}: run the same fanout version on both`));
              writeLine(socket, { type: 'auth', mac: proof(token, 'coordinator', msg.nonce), nonce: ourNonce });
            } else if (msg.type === 'refused') {
              fail(new AgentRefusedError(`${this.name} refused this coordinator: ${msg.reason}`));
            } else if (msg.type === 'welcome') {
              if (!verifyProof(token, 'agent', ourNonce, msg.mac)) return fail(new AgentRefusedError(`${this.name} could not prove it holds the agent token: it is not the agent you started, or its token differs`));
              if (!(Number.isInteger(msg.workers) && msg.workers > 0)) return fail(new AgentRefusedError(`${this.name} offers no workers`));
              this.size = msg.workers;
              this.cpus = msg.cpus;
              settled = true;
              clearTimeout(timer);
              socket.removeAllListeners('error');
              socket.removeAllListeners('close');
              socket.on('error', (err) => this.gone(`connection error: ${(err as { code?: string }).code ?? err.message}`));
              socket.on('close', () => this.gone('connection closed'));
              resolve();
            }
            return;
          }
          this.onMessage(msg);
        },
        (why) => (settled ? this.gone(`sent ${why}`) : fail(new AgentRefusedError(`${this.name} sent ${why}`))),
      );
    });
  }

  private onMessage(msg: FromAgent): void {
    switch (msg.type) {
      case 'from':
        this.events?.message(msg.msg);
        return;
      case 'pong': {
        const p = this.pings.get(msg.id);
        if (!p) return;
        this.pings.delete(msg.id);
        p.resolve(offsetSample(p.sentAt, Date.now(), msg.now));
        return;
      }
      case 'lost':
        this.gone(msg.reason);
        this.socket.destroy();
        return;
    }
  }

  private gone(reason: string): void {
    if (this.closing || this.lostReason) return;
    this.lostReason = reason;
    for (const p of this.pings.values()) p.resolve({ offsetMs: this.clock.offsetMs, rttMs: Infinity });
    this.pings.clear();
    this.events?.lost(reason);
  }

  start(events: HostEvents): void {
    this.events = events;
    if (this.lostReason) events.lost(this.lostReason);
  }

  send(localIndex: number, msg: CoordinatorMessage): void {
    writeLine(this.socket, { type: 'to', worker: localIndex, msg });
  }

  private ping(): Promise<{ offsetMs: number; rttMs: number }> {
    const id = ++this.nextPing;
    return new Promise((resolve) => {
      this.pings.set(id, { sentAt: Date.now(), resolve });
      writeLine(this.socket, { type: 'ping', id });
    });
  }

  /** Best of CLOCK_SAMPLES round trips: the one with the shortest RTT bounds the offset tightest. */
  async syncClock(): Promise<void> {
    let best: { offsetMs: number; rttMs: number } | undefined;
    for (let i = 0; i < CLOCK_SAMPLES && !this.lostReason; i++) {
      const s = await this.ping();
      if (!best || s.rttMs < best.rttMs) best = s;
    }
    if (best && Number.isFinite(best.rttMs)) {
      this.clock.offsetMs = Math.round(best.offsetMs * 100) / 100;
      this.clock.uncertaintyMs = Math.round((best.rttMs / 2) * 100) / 100;
    }
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => this.socket.destroy(), 3000);
      this.socket.once('close', () => {
        clearTimeout(kill);
        resolve();
      });
      // The agent ends its workers when the coordinator hangs up.
      this.socket.end();
    });
  }
}

/**
 * The generator for a run with agents: `localWorkers` processes here (0 is allowed: the
 * coordinator only coordinates) and every agent, connected and authenticated. Any agent
 * that cannot be reached or refuses the token fails the whole set-up, naming it.
 */
export async function openGeneratorPool(opts: { localWorkers: number; agents: readonly string[]; token: string | undefined }): Promise<WorkerPool> {
  if (opts.agents.length && !opts.token) throw new AgentRefusedError('--agents needs the agents’ shared token: --agent-token or FANOUT_AGENT_TOKEN');
  const hosts: WorkerHost[] = [];
  try {
    if (opts.localWorkers > 0) hosts.push(await LocalWorkers.start(opts.localWorkers));
    const agents = await Promise.allSettled(opts.agents.map((a) => AgentHost.connect(a, opts.token!)));
    for (const r of agents) if (r.status === 'fulfilled') hosts.push(r.value);
    const failed = agents.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return WorkerPool.fromHosts(hosts);
  } catch (err) {
    await Promise.all(hosts.map((h) => h.close()));
    throw err;
  }
}
