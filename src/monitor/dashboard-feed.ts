// The dashboard's live feed: `GET /dashboard/feed`, an SSE stream per viewer.
//
// Every viewer receives the same frames, so each frame is serialized once and the same
// Buffer is written to all of them (encode once, write many). Viewers are ordinary
// managed connections (transport `dashboard`): they count against the caps, heartbeat
// from the shared sweep, and are told to go away on shutdown.
//
// A viewer writes through the connection writer's SSE adapter (server/writer.ts), so the
// one slow-consumer rule applies, with the feed's own `Delivery`. Its allowance is the
// largest frame the feed has sent, since a frame is sent whole however large: the opening
// frame carries the history and may be far larger than the budget, and a viewer always
// receives it (it is the first frame of the stream). A viewer that stops reading is
// closed at the write that would pass budget + allowance, or at the second sweep in a
// row that finds it over the budget.
//
// Access needs the service_role key: the feed names channels (which carry user and
// content ids) and the gateway's internals. The page sends it as `Authorization:
// Bearer`; `?apikey=` also works for curl and EventSource, and is scrubbed from logs.
import type { ServerResponse } from 'node:http';
import type { Services } from '../server/services.js';
import type { CloseReason, ManagedConnection } from '../server/connections.js';
import { nextConnectionId } from '../server/connections.js';
import { Delivery, Phase, SseWriter } from '../server/writer.js';
import type { RequestContext } from '../server/router.js';
import { httpErrorOf, writeHead } from '../server/http-errors.js';
import { authenticate, requireServiceRole, userKeyOf } from '../server/http-auth.js';

export function sseFrame(event: string, data: unknown): Buffer {
  return Buffer.from(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

const HEARTBEAT = Buffer.from(':\n\n');

class DashboardViewer extends SseWriter implements ManagedConnection {
  readonly transport = 'dashboard' as const;
  readonly openedAt = Date.now();
  private lastWrite = this.openedAt;

  constructor(
    readonly id: string,
    readonly userKey: string,
    res: ServerResponse,
    private readonly feed: DashboardFeed,
  ) {
    super(res);
  }

  protected get delivery(): Delivery {
    return this.feed.delivery;
  }

  /** Writes a frame, held to the writer's budget (a slow viewer is closed; see the header comment). */
  send(frame: Buffer | string, now = Date.now()): void {
    if (this.write(frame) === 'ok') this.lastWrite = now;
  }

  /** The shared sweep: the budget's sweep half, then the heartbeat. */
  tick(now: number): void {
    if (this.phase !== Phase.open || this.sweep()) return;
    if (now - this.lastWrite >= this.feed.heartbeatMs) this.send(HEARTBEAT, now);
  }

  close(reason: CloseReason): void {
    if (!this.beginClose()) return;
    if (!this.res.destroyed) {
      this.write(sseFrame('close', { reason, reconnect: reason === 'shutdown' }));
      this.shut();
      this.res.end();
      // A stalled reader would never drain the backlog the close frame sits behind; drop
      // it now. It loses nothing: on reconnect the opening frame carries the history.
      if (reason === 'slow_consumer') this.res.destroy();
    }
    this.ended(reason);
  }

  /** Bookkeeping once the stream is over, whoever ended it. */
  ended(reason: CloseReason | 'client'): void {
    if (this.phase === Phase.gone) return;
    this.gone();
    this.feed.forget(this, reason);
  }
}

export class DashboardFeed {
  private readonly viewers = new Set<DashboardViewer>();
  /** The viewers' budget and slow-consumer count (their frames are not hub deliveries, so nothing is tallied). */
  readonly delivery: Delivery;
  readonly heartbeatMs: number;

  constructor(
    private readonly deps: Pick<Services, 'config' | 'auth' | 'clientAddress' | 'connections' | 'metrics' | 'log' | 'hub'>,
    /** The per-viewer opening frame: history, rules and alerts as of now. */
    private readonly hello: () => unknown,
  ) {
    const { config, hub, metrics } = deps;
    this.delivery = new Delivery({ transport: 'dashboard', budgetBytes: config.slowConsumerBytes, allowanceBytes: 0, hub, metrics });
    this.heartbeatMs = config.heartbeatMs;
  }

  get size(): number {
    return this.viewers.size;
  }

  async open({ req, res, query, requestId }: RequestContext): Promise<void> {
    const { deps } = this;
    const claims = await authenticate(deps.auth, req, query);
    requireServiceRole(claims, 'the dashboard feed');
    const userKey = userKeyOf(claims, deps.clientAddress(req));
    try {
      deps.connections.admit(userKey);
    } catch (err) {
      const answer = httpErrorOf(err);
      if (answer) deps.metrics.connectionsRejected.labels('dashboard', answer.code).inc();
      throw err;
    }
    writeHead(res, 200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    const viewer = new DashboardViewer(nextConnectionId('d'), userKey, res, this);
    this.viewers.add(viewer);
    deps.connections.add(viewer);
    deps.metrics.connectionsOpened.labels('dashboard').inc();
    res.on('close', () => viewer.ended('client'));
    viewer.send(`retry: ${deps.config.retryMs}\n\n`);
    const hello = sseFrame('hello', this.hello());
    this.delivery.allow(hello.length);
    viewer.send(hello);
    deps.log.info({ connId: viewer.id, reqId: requestId, viewers: this.viewers.size }, 'dashboard viewer connected');
  }

  /** Sends one event to every viewer, serialized once. */
  broadcast(event: string, data: unknown): void {
    if (this.viewers.size === 0) return;
    const frame = sseFrame(event, data);
    this.delivery.allow(frame.length);
    const now = Date.now();
    for (const viewer of this.viewers) viewer.send(frame, now);
  }

  forget(viewer: DashboardViewer, reason: CloseReason | 'client'): void {
    this.viewers.delete(viewer);
    this.deps.connections.remove(viewer);
    this.deps.log.info({ connId: viewer.id, reason, seconds: Math.round((Date.now() - viewer.openedAt) / 1000) }, 'dashboard viewer disconnected');
  }
}
