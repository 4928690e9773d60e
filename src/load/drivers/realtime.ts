// One collaborating user on Supabase Realtime, spoken with raw `ws` and the Phoenix v2
// serializer (a worker holds thousands; a supabase-js client each would be too heavy).
// It behaves as realtime-js does — joins `realtime:project:<id>` with presence and a
// postgres_changes binding on the comments table, heartbeats every 25 s, rejoins after a
// channel error on the 1/2/5/10 s schedule, reconnects after a socket drop — and
// measures: WebSocket open time, channel subscription (join) time, time to first event,
// presence propagation (a presence_diff carrying another user's stamped meta), document
// broadcast latency and comment (postgres_changes) latency, each from the INTENDED send
// time stamped by an open-loop schedule, with per-stream sequence numbers for loss.
// One file: it is one user's state machine (connect, join, heartbeat, rejoin, reconnect,
// churn), and every handler below reads and moves that state.
import WebSocket from 'ws';
import { decodeFrame, encodeBroadcastPush, encodeText, heartbeatFrame, type DecodedMessage } from '../protocol/phoenix.js';
import { churnLifetimeMs } from '../schedule.js';
import type { RealtimeUserPlan, RealtimeWorkerPlan } from '../plan.js';
import type { UptimeLedger } from '../uptime.js';
import { errorKind, type DriverContext } from './context.js';
import { WireMeter } from './wire-meter.js';
import { DocNumbering, docStream, isStamp, markJoinedUser, presenceStream, projectAudience, projectTopic, recordComment, recordStamped, type LoadStamp, type RealtimeDriver } from './realtime-streams.js';
import type { PublishedStreams } from '../plan.js';

const G = 'realtime' as const;
/** realtime-js reconnect and rejoin back-off (spec §1.5). */
const BACKOFF_MS = [1000, 2000, 5000, 10_000];

type State = 'idle' | 'connecting' | 'open' | 'joined' | 'closed';

export class RealtimeUser implements RealtimeDriver {
  private state: State = 'idle';
  private ws: WebSocket | undefined;
  private ref = 0;
  private joinRef: string | undefined;
  private joinStarted = 0;
  private connectStarted = 0;
  /** When this user started trying to be subscribed (first connect, or the drop it is recovering from). */
  private subscribeSince = 0;
  private heartbeatRef: string | undefined;
  private lastHeartbeatAt = 0;
  private attempts = 0;
  private failures = 0;
  private round = 0;
  private firstEventPending = true;
  private everJoined = false;
  private ledger: UptimeLedger;
  private presenceSeq = -1;
  private readonly docs: DocNumbering;
  /** The server confirmed the channel's postgres_changes subscription ("Subscribed to PostgreSQL"). */
  private commentsLive = false;
  private readonly topic: string;
  private readonly audience: string;
  private readonly wire: WireMeter;
  connectingSince = 0;

  constructor(
    private readonly plan: RealtimeUserPlan,
    private readonly opts: RealtimeWorkerPlan,
    private readonly ctx: DriverContext,
  ) {
    this.topic = projectTopic(plan.project);
    this.audience = projectAudience(plan.project);
    this.docs = new DocNumbering(docStream(plan.project));
    this.ledger = ctx.recorder.ledger(G);
    this.wire = new WireMeter(ctx.recorder, 'realtime.wire_bytes_in');
  }

  flushWire(): void {
    this.wire.flush();
  }

  get isConnecting(): boolean {
    return this.state === 'connecting';
  }

  get isJoined(): boolean {
    return this.state === 'joined';
  }

  private get subscriber(): string {
    return `r${this.plan.id}.${this.round}`;
  }

  start(): void {
    this.subscribeSince = performance.now();
    this.connect();
  }

  close(): void {
    if (this.state === 'closed') return;
    const prev = this.state;
    this.state = 'closed';
    this.ledger.end(this.ctx.now());
    this.leaveGauges(prev);
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      this.countBytesOut(ws);
      this.wire.detach();
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'load test finished');
      else ws.terminate();
    }
  }

  timeout(): void {
    if (this.state !== 'connecting') return;
    this.ctx.recorder.error(G, 'connect_timeout');
    this.ws?.terminate();
  }

  /** From the worker's sweep: heartbeats on realtime-js's schedule, and its heartbeat timeout. */
  heartbeat(now: number): void {
    if ((this.state !== 'open' && this.state !== 'joined') || !this.ws) return;
    if (now - this.lastHeartbeatAt < this.opts.heartbeatMs) return;
    if (this.heartbeatRef) {
      // No reply within one interval: realtime-js closes with 1000 "heartbeat timeout" and reconnects.
      this.ctx.recorder.error(G, 'heartbeat_timeout');
      this.ws.close(1000, 'heartbeat timeout');
      return;
    }
    this.heartbeatRef = this.nextRef();
    this.lastHeartbeatAt = now;
    this.send(heartbeatFrame(this.heartbeatRef));
  }

  /** Scheduled presence update: track a new meta stamped with its intended time. */
  trackPresence(intendedTs: number): void {
    if (this.state !== 'joined') {
      this.ctx.recorder.count('realtime.presence.skipped');
      return;
    }
    const seq = this.presenceSeq + 1;
    const stamp: LoadStamp = { s: presenceStream(this.plan.project, this.plan.userKey), seq, t: intendedTs };
    const payload = { u: this.plan.userKey, lt: stamp };
    if (this.send(encodeText(this.joinRef!, this.nextRef(), this.topic, 'presence', { type: 'presence', event: 'track', payload }))) {
      this.presenceSeq = seq;
      this.ctx.recorder.count('realtime.presence.sent');
      this.countPayload(payload);
    }
  }

  /** Scheduled document update: a broadcast (binary kind 3, as realtime-js sends it) stamped with its intended time. */
  sendDoc(intendedTs: number): void {
    if (this.state !== 'joined') {
      this.ctx.recorder.count('realtime.broadcast.skipped');
      return;
    }
    const stamp = this.docs.next(intendedTs);
    if (this.send(encodeBroadcastPush(this.joinRef!, this.nextRef(), this.topic, 'doc', stamp))) {
      this.ctx.recorder.count('realtime.broadcast.sent');
      this.countPayload(stamp);
    } else this.docs.fail(stamp.seq);
  }

  answerRollCall(fromFirst: ReadonlySet<string>): number {
    return this.state === 'joined' ? markJoinedUser(this.ctx, this.subscriber, this.plan, this.commentsLive, fromFirst) : 0;
  }

  rollCallClosed(): void {
    this.docs.rollCallClosed();
  }

  /** The application payload a send carried, for the protocol overhead per delivered message. */
  private countPayload(payload: object): void {
    this.ctx.recorder.count('realtime.payload_bytes_sent', JSON.stringify(payload).length);
    this.ctx.recorder.count('realtime.payloads_sent');
  }

  /** What this user published, for the receivers' tail-loss accounting. */
  published(): PublishedStreams {
    const out: PublishedStreams = this.plan.sendsDoc ? this.docs.published() : {};
    if (this.presenceSeq >= 0) out[presenceStream(this.plan.project, this.plan.userKey)] = { last: this.presenceSeq, failed: [] };
    return out;
  }

  private nextRef(): string {
    return String(++this.ref);
  }

  private send(frame: string | Buffer): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(frame);
    return true;
  }

  private connect(): void {
    if (this.ctx.stopping) return;
    this.state = 'connecting';
    this.attempts++;
    const rec = this.ctx.recorder;
    rec.count('realtime.connect.attempts');
    if (this.attempts > 1) rec.count('realtime.reconnects');
    this.connectStarted = performance.now();
    this.connectingSince = this.connectStarted;
    this.heartbeatRef = undefined;
    const ws = new WebSocket(this.opts.wsUrl, {
      perMessageDeflate: false,
      handshakeTimeout: this.opts.connectTimeoutMs,
      localAddress: this.ctx.localAddress(this.plan.id),
    });
    this.ws = ws;
    ws.on('open', () => this.onOpen(ws));
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(ws, data, isBinary));
    ws.on('unexpected-response', (_req, res) => {
      rec.error(G, `http_${res.statusCode ?? 0}`);
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => {
      if (ws !== this.ws) return;
      rec.error(G, `${this.state === 'connecting' ? 'connect' : 'socket'}_${errorKind(err)}`);
    });
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString()));
  }

  private onOpen(ws: WebSocket): void {
    if (ws !== this.ws || this.state !== 'connecting') return;
    const rec = this.ctx.recorder;
    rec.histograms.recordMs('realtime.connect', performance.now() - this.connectStarted);
    rec.count('realtime.connect.ok');
    // ws keeps the socket private; reading its byte count is all this does with it.
    this.wire.attach((ws as unknown as { _socket?: { bytesRead: number } })._socket);
    rec.gauge('realtime.open', 1);
    this.state = 'open';
    this.lastHeartbeatAt = this.ctx.now();
    this.join();
  }

  private join(): void {
    const bindings = this.opts.comments
      ? [{ event: '*', schema: this.opts.commentsTable.schema, table: this.opts.commentsTable.table, filter: `${this.opts.commentsTable.filterColumn}=eq.${this.plan.project}` }]
      : [];
    this.joinRef = this.nextRef();
    this.joinStarted = performance.now();
    this.commentsLive = false;
    this.send(
      encodeText(this.joinRef, this.joinRef, this.topic, 'phx_join', {
        config: { broadcast: { ack: false, self: false }, presence: { key: this.plan.userKey, enabled: this.opts.presence }, postgres_changes: bindings, private: false },
        access_token: this.opts.accessToken,
      }),
    );
  }

  private onMessage(ws: WebSocket, data: Buffer, isBinary: boolean): void {
    if (ws !== this.ws) return;
    const now = this.ctx.now();
    const rec = this.ctx.recorder;
    rec.count('realtime.bytes_in', data.length);
    let msg: DecodedMessage;
    try {
      msg = decodeFrame(data, isBinary);
    } catch {
      rec.error(G, 'undecodable_frame');
      return;
    }
    rec.count('realtime.frames');
    switch (msg.event) {
      case 'phx_reply':
        return this.onReply(msg);
      case 'presence_state':
        this.firstEvent();
        return this.onPresenceState(msg.payload);
      case 'presence_diff':
        this.firstEvent();
        return this.onPresenceDiff(msg.payload, now);
      case 'broadcast':
        this.firstEvent();
        return this.onBroadcast(msg.payload, now);
      case 'postgres_changes':
        this.firstEvent();
        return this.onChange(msg.payload, now);
      case 'system':
        return this.onSystem(msg.payload);
      case 'phx_close':
        if (msg.topic === this.topic && this.state === 'joined') {
          // The server closed the channel; realtime-js does not rejoin after phx_close.
          rec.error(G, 'channel_closed_by_server');
          this.channelDown();
        }
        return;
      case 'phx_error':
        if (msg.topic === this.topic && this.state === 'joined') {
          rec.error(G, 'channel_error');
          this.channelDown();
          this.scheduleRejoin();
        }
        return;
      default:
        rec.count('realtime.other_frames');
    }
  }

  private onReply(msg: DecodedMessage): void {
    const rec = this.ctx.recorder;
    const reply = msg.payload as { status?: string; response?: { reason?: unknown } | string } | null;
    const ok = reply?.status === 'ok';
    if (msg.ref === this.heartbeatRef) {
      this.heartbeatRef = undefined;
      if (!ok) rec.error(G, 'heartbeat_error');
      return;
    }
    if (msg.ref === this.joinRef && msg.topic === this.topic && this.state === 'open') {
      if (ok) return this.onJoined();
      const reason = typeof reply?.response === 'object' && reply.response && typeof reply.response.reason === 'string' ? reply.response.reason : 'unknown';
      rec.error(G, `join_${reason.split(':')[0]!.slice(0, 60)}`);
      rec.count('realtime.join.failed');
      this.scheduleRejoin();
      return;
    }
    if (!ok) rec.error(G, 'push_error');
  }

  private onJoined(): void {
    const rec = this.ctx.recorder;
    const now = this.ctx.now();
    rec.histograms.recordMs('realtime.join', performance.now() - this.joinStarted);
    // What a supabase-js app waits for between subscribe() and SUBSCRIBED: connecting plus joining.
    rec.histograms.recordMs('realtime.subscribe', performance.now() - this.subscribeSince);
    rec.count('realtime.join.ok');
    if (!this.everJoined) {
      this.everJoined = true;
      rec.count('realtime.established');
    }
    this.failures = 0;
    this.state = 'joined';
    rec.gauge('realtime.joined', 1);
    rec.audience(this.audience, 1);
    this.ledger.connected(now);
    // Announce this user on the channel (seq continues across reconnects).
    if (this.opts.presence) this.trackPresence(now);
    if (this.opts.pattern === 'sustained') {
      const round = this.round;
      this.ctx.tasks.at(now + churnLifetimeMs(this.opts.churnMeanMs, this.plan.id, round), () => this.churn(round));
    }
  }

  private firstEvent(): void {
    if (!this.firstEventPending) return;
    this.firstEventPending = false;
    this.ctx.recorder.histograms.recordMs('realtime.first_event', performance.now() - this.connectStarted);
  }

  private onPresenceState(payload: unknown): void {
    if (!payload || typeof payload !== 'object') return;
    for (const entry of Object.values(payload as Record<string, { metas?: unknown[] }>)) {
      for (const meta of entry?.metas ?? []) {
        const lt = (meta as { lt?: unknown }).lt;
        if (isStamp(lt)) this.ctx.recorder.tracker(this.subscriber, 'realtime.presence', lt.s, false).baseline(lt.seq);
      }
    }
  }

  private onPresenceDiff(payload: unknown, now: number): void {
    const joins = (payload as { joins?: Record<string, { metas?: unknown[] }> } | null)?.joins;
    if (!joins) return;
    for (const entry of Object.values(joins)) {
      for (const meta of entry?.metas ?? []) {
        const lt = (meta as { lt?: unknown }).lt;
        if (isStamp(lt)) this.measured('realtime.presence', lt, now, 0);
      }
    }
  }

  private onBroadcast(payload: unknown, now: number): void {
    const inner = (payload as { payload?: unknown } | null)?.payload;
    if (isStamp(inner)) this.measured('realtime.broadcast', inner, now, 1);
    else this.ctx.recorder.count('realtime.unstamped');
  }

  private onChange(payload: unknown, now: number): void {
    const data = (payload as { data?: { record?: { body?: unknown }; commit_timestamp?: unknown } } | null)?.data;
    recordComment(this.ctx, this.subscriber, data?.record, data?.commit_timestamp, now, this.audience);
  }

  private measured(kind: string, stamp: LoadStamp, now: number, exclude: number): void {
    recordStamped(this.ctx, this.subscriber, kind, stamp, now, this.audience, exclude);
  }

  private onSystem(payload: unknown): void {
    const p = payload as { status?: unknown; message?: unknown; extension?: unknown } | null;
    if (p?.status === 'error') {
      this.ctx.recorder.error(G, `system_${String(p.message ?? 'error').replace(/\s+/g, '_').slice(0, 60)}`);
      if (p.extension === 'postgres_changes') {
        // A failed subscription is owed nothing from now on (the user keeps only what it already tracks).
        this.commentsLive = false;
        this.ctx.recorder.rollCall.unmark(this.subscriber, 'realtime.comments');
      }
    } else if (p?.extension === 'postgres_changes') {
      this.commentsLive = true;
      this.ctx.recorder.count('realtime.pg_subscribed');
    }
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    const rec = this.ctx.recorder;
    const prev = this.state;
    if (prev === 'closed') return;
    rec.closeCode(G, reason ? `${code}_${reason.replace(/\s+/g, '_').slice(0, 40)}` : String(code));
    this.countBytesOut(ws);
    this.wire.detach();
    this.ws = undefined;
    this.state = 'idle';
    const now = this.ctx.now();
    if (prev === 'connecting') rec.count('realtime.connect.failed');
    this.leaveGauges(prev);
    if (this.ctx.stopping) {
      this.ledger.end(now);
      return;
    }
    if (prev === 'joined') {
      this.subscribeSince = performance.now();
      this.ledger.disconnected(now);
      rec.count('realtime.drops');
      rec.dropped(this.subscriber);
    }
    if (!this.opts.reconnect) return;
    const delay = BACKOFF_MS[Math.min(this.failures++, BACKOFF_MS.length - 1)]!;
    this.ctx.tasks.at(now + delay, () => {
      if (this.state === 'idle') this.connect();
    });
  }

  private leaveGauges(prev: State): void {
    const rec = this.ctx.recorder;
    if (prev === 'open' || prev === 'joined') rec.gauge('realtime.open', -1);
    if (prev === 'joined') {
      rec.gauge('realtime.joined', -1);
      rec.audience(this.audience, -1);
    }
  }

  private countBytesOut(ws: WebSocket): void {
    const written = (ws as unknown as { _socket?: { bytesWritten?: number } })._socket?.bytesWritten;
    if (written) this.ctx.recorder.count('realtime.bytes_out', written);
  }

  /** The channel is down but the socket is up. */
  private channelDown(): void {
    const now = this.ctx.now();
    this.subscribeSince = performance.now();
    this.ledger.disconnected(now);
    this.ctx.recorder.count('realtime.drops');
    this.ctx.recorder.gauge('realtime.joined', -1);
    this.ctx.recorder.audience(this.audience, -1);
    this.ctx.recorder.dropped(this.subscriber);
    this.state = 'open';
    this.joinRef = undefined;
  }

  private scheduleRejoin(): void {
    if (!this.opts.reconnect || this.ctx.stopping) return;
    const delay = BACKOFF_MS[Math.min(this.failures++, BACKOFF_MS.length - 1)]!;
    this.ctx.tasks.at(this.ctx.now() + delay, () => {
      if (this.state === 'open') this.join();
    });
  }

  private churn(round: number): void {
    if (round !== this.round || this.state !== 'joined' || this.ctx.stopping) return;
    this.close();
    this.ctx.recorder.left(this.subscriber);
    this.ctx.recorder.count('realtime.churned');
    this.round++;
    this.ledger = this.ctx.recorder.ledger(G);
    this.state = 'idle';
    this.attempts = 0;
    this.failures = 0;
    this.firstEventPending = false;
    this.start();
  }
}
