// One SSE subscriber, spoken over raw node:http (no EventSource per connection: a worker
// holds thousands). It behaves like EventSource — Accept: text/event-stream, reconnect
// after a drop with Last-Event-ID, honouring the server's `retry:` — and measures what
// EventSource hides: time to response headers (connection establishment), time to first
// event, every event's latency from the server's publish stamp `ts` (and from the
// publisher's intended time `lt` when present), the per-stream `seq` (loss, duplicates,
// reordering), bytes, errors by kind, close reasons and connected time. Receive time is
// taken once per socket read, before the chunk is parsed.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import { SseParser, type SseEvent } from '../../client/sse-parser.js';
import { churnLifetimeMs } from '../schedule.js';
import type { SseConnectionPlan, SseWorkerPlan } from '../plan.js';
import type { UptimeLedger } from '../uptime.js';
import { errorKind, type DriverContext } from './context.js';
import { WireMeter } from './wire-meter.js';

const G = 'sse' as const;

type State = 'idle' | 'connecting' | 'open' | 'closed';

export class SseConnection {
  private state: State = 'idle';
  private req: ClientRequest | undefined;
  private res: IncomingMessage | undefined;
  private parser: SseParser;
  private decoder = new StringDecoder('utf8');
  private connectStarted = 0;
  private everEstablished = false;
  private firstEventPending = false;
  private retryMs: number;
  private chunkAt = 0;
  /** The server announced this connection's subscription (Fanout's `ready` event): it receives what is published from now on. */
  private ready = false;
  private round = 0;
  private attempts = 0;
  private ledger: UptimeLedger;
  private readonly wire: WireMeter;
  /** Performance-clock time the current connect attempt started, for the worker's timeout sweep. */
  connectingSince = 0;

  constructor(
    private readonly plan: SseConnectionPlan,
    private readonly opts: SseWorkerPlan,
    private readonly ctx: DriverContext,
  ) {
    this.retryMs = opts.reconnectDelayMs;
    this.ledger = ctx.recorder.ledger(G);
    this.wire = new WireMeter(ctx.recorder, 'sse.wire_bytes_in');
    this.parser = this.newParser();
  }

  /** Adds what the socket read since the last call to `sse.wire_bytes_in` (called on every worker tick). */
  flushWire(): void {
    this.wire.flush();
  }

  private newParser(): SseParser {
    return new SseParser({
      event: (e) => this.onEvent(e),
      comment: () => this.ctx.recorder.count('sse.heartbeats'),
      retry: (ms) => (this.retryMs = ms),
    });
  }

  get isConnecting(): boolean {
    return this.state === 'connecting';
  }

  private get subscriber(): string {
    return `s${this.plan.id}.${this.round}`;
  }

  /** Called at the connection's scheduled arrival time. */
  start(): void {
    this.connect();
  }

  /**
   * The roll call (roll-call.ts): a connection whose subscription is live is owed its stream
   * from the first number when the coordinator publishes it only after this. Returns 1 when marked.
   */
  answerRollCall(fromFirst: ReadonlySet<string>): number {
    if (this.state !== 'open' || !this.ready || !fromFirst.has('sse')) return 0;
    this.ctx.recorder.rollCall.mark(this.subscriber, 'sse', this.plan.stream, 1);
    return 1;
  }

  /** Closes on purpose (end of test or churn); not a drop. */
  close(): void {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.ledger.end(this.ctx.now());
    if (wasOpen) this.leave();
    this.countBytesOut();
    this.wire.detach();
    this.req?.destroy();
    this.req = undefined;
    this.res = undefined;
  }

  /** Aborts a connect attempt that exceeded the timeout (called from the worker's sweep). */
  timeout(): void {
    if (this.state !== 'connecting') return;
    this.req?.destroy(Object.assign(new Error('connect timeout'), { code: 'timeout' }));
  }

  private connect(): void {
    if (this.ctx.stopping) return;
    this.state = 'connecting';
    this.attempts++;
    this.ctx.recorder.count('sse.connect.attempts');
    if (this.attempts > 1) this.ctx.recorder.count('sse.reconnects');
    this.connectStarted = performance.now();
    this.connectingSince = this.connectStarted;
    this.ready = false;
    this.parser.restart();
    this.decoder = new StringDecoder('utf8');
    const url = new URL(this.plan.url);
    const headers: Record<string, string> = { accept: 'text/event-stream', 'cache-control': 'no-cache', ...this.opts.headers };
    if (this.parser.lastId) headers['last-event-id'] = this.parser.lastId;
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, { method: 'GET', headers, agent: false, localAddress: this.ctx.localAddress(this.plan.id) });
    this.req = req;
    req.on('socket', (socket) => this.wire.attach(socket));
    req.on('response', (res) => this.onResponse(req, res));
    req.on('error', (err) => this.onError(req, err));
    req.end();
  }

  private onResponse(req: ClientRequest, res: IncomingMessage): void {
    if (req !== this.req || this.state !== 'connecting') {
      res.destroy();
      return;
    }
    const type = String(res.headers['content-type'] ?? '');
    if (res.statusCode !== 200 || !type.includes('text/event-stream')) {
      this.ctx.recorder.error(G, `http_${res.statusCode ?? 0}`);
      this.ctx.recorder.count('sse.connect.failed');
      const retryAfter = Number(res.headers['retry-after']);
      res.resume();
      this.state = 'idle';
      req.destroy();
      this.scheduleReconnect(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 30_000) : undefined);
      return;
    }
    const now = this.ctx.now();
    this.res = res;
    this.state = 'open';
    this.ctx.recorder.histograms.recordMs('sse.connect', performance.now() - this.connectStarted);
    this.ctx.recorder.count('sse.connect.ok');
    if (!this.everEstablished) {
      this.everEstablished = true;
      this.firstEventPending = true;
      this.ctx.recorder.count('sse.established');
    }
    this.ledger.connected(now);
    this.ctx.recorder.gauge('sse.open', 1);
    this.ctx.recorder.audience(this.plan.audience, 1);
    if (this.opts.pattern === 'sustained') {
      const lifetime = churnLifetimeMs(this.opts.churnMeanMs, this.plan.id, this.round);
      const round = this.round;
      this.ctx.tasks.at(now + lifetime, () => this.churn(round));
    }
    res.on('data', (chunk: Buffer) => {
      this.chunkAt = this.ctx.now();
      this.ctx.recorder.count('sse.bytes_in', chunk.length);
      this.parser.feed(this.decoder.write(chunk));
    });
    res.on('close', () => this.onDrop(req, res.complete ? 'server_closed' : 'reset'));
    res.on('error', (err) => this.onError(req, err));
  }

  private onEvent(e: SseEvent): void {
    const rec = this.ctx.recorder;
    const now = this.chunkAt;
    rec.count('sse.messages');
    if (this.firstEventPending) {
      this.firstEventPending = false;
      rec.histograms.recordMs('sse.first_event', performance.now() - this.connectStarted);
    }
    if (e.event === 'ready') this.ready = true;
    if (e.event === 'reset' || e.event === 'error' || e.event === 'shutdown') rec.error(G, `event_${e.event}`);
    let data: { ts?: unknown; seq?: unknown; lt?: unknown; topic?: unknown };
    try {
      data = JSON.parse(e.data) as typeof data;
    } catch {
      rec.count('sse.non_json');
      return;
    }
    if (!data || typeof data !== 'object') return;
    const ts = typeof data.ts === 'number' ? data.ts : undefined;
    if (ts !== undefined) rec.histograms.recordMs('sse.latency', now - ts);
    if (typeof data.lt === 'number') rec.histograms.recordMs('sse.latency_e2e', now - data.lt);
    if (typeof data.seq === 'number' && data.seq > 0) {
      // A multi-topic stream names each event's topic; a single-topic stream's topic is its URL's.
      const stream = typeof data.topic === 'string' ? data.topic : this.plan.stream;
      const obs = rec.tracker(this.subscriber, 'sse', stream, this.opts.reconnect).observe(data.seq);
      if (obs !== 'duplicate' && ts !== undefined) rec.delivery(stream, data.seq, ts, now, this.plan.audience);
    }
  }

  private onError(req: ClientRequest, err: unknown): void {
    if (req !== this.req) return;
    const kind = errorKind(err);
    if (this.state === 'connecting') {
      this.ctx.recorder.error(G, `connect_${kind}`);
      this.ctx.recorder.count('sse.connect.failed');
      this.state = 'idle';
      this.scheduleReconnect();
    } else if (this.state === 'open') {
      this.ctx.recorder.error(G, `stream_${kind}`);
      this.onDrop(req, kind);
    }
  }

  private onDrop(req: ClientRequest, reason: string): void {
    if (req !== this.req || this.state !== 'open') return;
    const now = this.ctx.now();
    this.state = 'idle';
    this.ctx.recorder.closeCode(G, reason);
    this.leave();
    this.countBytesOut();
    this.wire.detach();
    if (this.ctx.stopping) {
      this.ledger.end(now);
      return;
    }
    this.ledger.disconnected(now);
    this.ctx.recorder.count('sse.drops');
    this.ctx.recorder.dropped(this.subscriber);
    this.scheduleReconnect();
  }

  private leave(): void {
    this.ctx.recorder.gauge('sse.open', -1);
    this.ctx.recorder.audience(this.plan.audience, -1);
  }

  private countBytesOut(): void {
    const written = this.req?.socket?.bytesWritten;
    if (written) this.ctx.recorder.count('sse.bytes_out', written);
  }

  private scheduleReconnect(delayMs?: number): void {
    if (!this.opts.reconnect || this.ctx.stopping) {
      this.state = 'closed';
      return;
    }
    this.ctx.tasks.at(this.ctx.now() + (delayMs ?? this.retryMs), () => {
      if (this.state === 'idle') this.connect();
    });
  }

  /** Sustained pattern: this connection's lifetime is over; close it and open its replacement. */
  private churn(round: number): void {
    if (round !== this.round || this.state !== 'open' || this.ctx.stopping) return;
    this.close();
    this.ctx.recorder.left(this.subscriber);
    this.ctx.recorder.count('sse.churned');
    this.round++;
    this.ledger = this.ctx.recorder.ledger(G);
    this.state = 'idle';
    this.everEstablished = true;
    this.attempts = 0;
    // A replacement is a new subscriber: no Last-Event-ID, fresh sequence baselines.
    this.parser = this.newParser();
    this.start();
  }
}
