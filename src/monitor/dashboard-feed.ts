// The dashboard's live feed: `GET /dashboard/feed`, an SSE stream per viewer.
//
// Every viewer receives the same frames, so each frame is serialized once and the same
// Buffer is written to all of them (encode once, write many). Viewers are ordinary
// managed connections (transport `dashboard`): they count against the caps, heartbeat
// from the shared sweep, are closed when they fall behind by more than the slow-consumer
// budget, and are told to go away on shutdown.
//
// Access needs the service_role key: the feed names channels (which carry user and
// content ids) and the gateway's internals. The page sends it as `Authorization:
// Bearer`; `?apikey=` also works for curl and EventSource, and is scrubbed from logs.
import type { ServerResponse } from 'node:http';
import type { Services } from '../server/services.js';
import type { CloseReason, ManagedConnection } from '../server/connections.js';
import { nextConnectionId } from '../server/connections.js';
import type { RequestContext } from '../server/router.js';
import { httpErrorOf, writeHead } from '../server/http-errors.js';
import { authenticate, requireServiceRole, userKeyOf } from '../server/http-auth.js';

export function sseFrame(event: string, data: unknown): Buffer {
  return Buffer.from(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

const HEARTBEAT = Buffer.from(':\n\n');

class DashboardViewer implements ManagedConnection {
  readonly transport = 'dashboard' as const;
  readonly openedAt = Date.now();
  private lastWrite = this.openedAt;
  private closed = false;

  constructor(
    readonly id: string,
    readonly userKey: string,
    private readonly res: ServerResponse,
    private readonly feed: DashboardFeed,
  ) {}

  /** Writes a frame unless the viewer already holds more unsent bytes than its budget. */
  write(frame: Buffer, now = Date.now()): void {
    if (this.closed) return;
    if (this.res.writableLength > this.feed.slowConsumerBytes) {
      this.feed.slowConsumer(this);
      return;
    }
    this.res.write(frame);
    this.lastWrite = now;
  }

  tick(now: number): void {
    if (now - this.lastWrite >= this.feed.heartbeatMs) this.write(HEARTBEAT, now);
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    if (!this.res.destroyed) {
      this.res.end(sseFrame('close', { reason, reconnect: reason === 'shutdown' }));
      // A stalled reader would never drain the backlog the close frame sits behind; drop
      // it now. It loses nothing: on reconnect the opening frame carries the history.
      if (reason === 'slow_consumer') this.res.destroy();
    }
    this.ended(reason);
  }

  /** Bookkeeping once the stream is over, whoever ended it. */
  ended(reason: CloseReason | 'client'): void {
    if (this.closed) return;
    this.closed = true;
    this.feed.forget(this, reason);
  }
}

export class DashboardFeed {
  private readonly viewers = new Set<DashboardViewer>();
  readonly slowConsumerBytes: number;
  readonly heartbeatMs: number;

  constructor(
    private readonly deps: Pick<Services, 'config' | 'auth' | 'clientAddress' | 'connections' | 'metrics' | 'log'>,
    /** The per-viewer opening frame: history, rules and alerts as of now. */
    private readonly hello: () => unknown,
  ) {
    this.slowConsumerBytes = deps.config.slowConsumerBytes;
    this.heartbeatMs = deps.config.heartbeatMs;
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
    res.write(`retry: ${deps.config.retryMs}\n\n`);
    viewer.write(sseFrame('hello', this.hello()));
    deps.log.info({ connId: viewer.id, reqId: requestId, viewers: this.viewers.size }, 'dashboard viewer connected');
  }

  /** Sends one event to every viewer, serialized once. */
  broadcast(event: string, data: unknown): void {
    if (this.viewers.size === 0) return;
    const frame = sseFrame(event, data);
    const now = Date.now();
    for (const viewer of this.viewers) viewer.write(frame, now);
  }

  slowConsumer(viewer: DashboardViewer): void {
    this.deps.metrics.slowConsumerDisconnects.labels('dashboard').inc();
    viewer.close('slow_consumer');
  }

  forget(viewer: DashboardViewer, reason: CloseReason | 'client'): void {
    this.viewers.delete(viewer);
    this.deps.connections.remove(viewer);
    this.deps.log.info({ connId: viewer.id, reason, seconds: Math.round((Date.now() - viewer.openedAt) / 1000) }, 'dashboard viewer disconnected');
  }
}
