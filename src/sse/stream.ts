// One SSE connection: a hub subscriber over one or more topics and a managed connection
// (caps, shared sweep, drain). Kept deliberately small, because a gateway holds tens of
// thousands of these: a handful of fields, no timers, no per-connection closures. The
// heartbeat, the token-expiry check and the grace period of a closing socket all run
// from `tick`, called by the one shared sweep.
//
// Close paths, all ending in `closed()` (the response's 'close' event), which unsubscribes
// and deregisters exactly once:
//   - the client goes away;
//   - the content finished (`endOnFinal`): the stream ends after the final event;
//   - `close(reason)` from the server: shutdown (drain), slow consumer, token expiry.
//     The reason is written as a last event, the response is ended, and if the client
//     does not take the bytes within CLOSE_GRACE_MS the socket is destroyed.
//
// Writing (the byte budget, delivery metrics) is the connection writer's
// (server/writer.ts): the stream extends its SSE adapter, whose phase is the stream's
// state (open, closing = shut, closed = gone).
import type { ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Hub, HubMessage, Position, Subscriber } from '../core/hub.js';
import type { CloseReason, ConnectionManager, ManagedConnection, Transport } from '../server/connections.js';
import { nextConnectionId } from '../server/connections.js';
import type { GatewayMetrics } from '../server/metrics.js';
import { Phase, SseWriter, type Delivery, type WriteResult } from '../server/writer.js';
import { formatCursor } from '../core/event-id.js';
import { FINAL_EVENTS } from '../core/progress-topics.js';
import { HEARTBEAT, controlFrame, sseBody, sseFrame } from './wire.js';
import type { StreamSharing } from './sharing.js';

/** How long a server-closed stream may take to flush its last event before its socket is destroyed. */
export const CLOSE_GRACE_MS = 5_000;

/** Where a stream starts in a topic: after a position the client sent, at the start of history, or now. */
export type StreamStart = Position | 'start' | 'now';

/** The position a start names in a topic: `now` is its current position, `start` offset 0 of its epoch. */
export function startPosition(hub: Hub, topic: string, start: StreamStart): Position {
  if (start === 'now') return hub.position(topic);
  if (start === 'start') return { epoch: hub.position(topic).epoch, offset: 0 };
  return start;
}

/** Per-gateway state every stream shares (one object, referenced by each stream). */
export interface StreamContext {
  readonly hub: Hub;
  readonly connections: ConnectionManager;
  readonly metrics: GatewayMetrics;
  /** The byte budget and delivery metrics of every SSE stream. */
  readonly delivery: Delivery;
  /** Present when `--sse-share-streams on`. */
  readonly sharing: StreamSharing | undefined;
  readonly heartbeatMs: number;
  readonly retryMs: number;
  /** The latest state behind a topic (content state for `content:` topics), sent in `reset` events. */
  stateOf(topic: string): unknown;
}

const CLOSE_MESSAGES: Record<CloseReason, string> = {
  shutdown: 'the gateway is shutting down; reconnect (to another instance) and resume with Last-Event-ID',
  slow_consumer: 'the client did not read fast enough: unsent data exceeded the limit, so the stream was closed; reconnect and resume with Last-Event-ID',
  token_expired: 'the key used to open this stream has expired; reconnect with a fresh token',
  idle: 'the stream was idle for too long',
  kicked: 'the stream was closed by the server',
  resync: 'the gateway lost messages of this stream on its cluster bus; reconnect and resume with Last-Event-ID (you are told reset if they cannot be replayed)',
};

/**
 * After a server-side close, make the client's reconnect open a new connection rather
 * than reuse this one: on shutdown it then lands on another instance (this one no longer
 * accepts), and a slow consumer's socket does not linger in keep-alive. HTTP/1.1: end the
 * socket once the last bytes are flushed. HTTP/2: on shutdown, close the session
 * gracefully (its other streams are being drained too); a slow stream just ends.
 */
function endTransport(res: ServerResponse, wholeSession: boolean): void {
  const h2 = (res as unknown as { stream?: ServerHttp2Stream }).stream;
  if (h2) {
    if (wholeSession && h2.session && !h2.session.closed) h2.session.close();
    return;
  }
  res.socket?.end();
}

/** The data of a `reset` event: what was lost, where the stream continues, and the current state. */
export function resetData(ctx: StreamContext, topic: string, reason: string, position: Position): Record<string, unknown> {
  return {
    topic,
    reason,
    message: 'history no longer covers the gap since your last event: refetch the current state (included when known)',
    epoch: position.epoch,
    seq: position.offset,
    ts: Date.now(),
    state: ctx.stateOf(topic),
  };
}

export class SseStream extends SseWriter implements ManagedConnection, Subscriber {
  readonly id = nextConnectionId('sse-');
  readonly openedAt = Date.now();
  /** Last heartbeat, or, once closing, when the close began. */
  private mark = this.openedAt;
  /** Per-topic positions for the id of a multi-topic stream; undefined for a single topic. */
  private cursor: Position[] | undefined;

  constructor(
    private readonly ctx: StreamContext,
    res: ServerResponse,
    readonly userKey: string,
    private readonly topics: readonly string[],
    /** Token expiry (ms since the epoch): the stream is closed with `token_expired` after it. */
    private readonly expiresAt: number,
    /** End the stream after a final event (`complete`, `failed`): a content item's own stream. */
    private readonly endOnFinal: boolean,
    /** Set when this stream shares its hub subscription with the user's other streams of the topic (sharing.ts). */
    private readonly shareKey?: string,
  ) {
    super(res);
  }

  get transport(): Transport {
    return 'sse';
  }

  protected get delivery(): Delivery {
    return this.ctx.delivery;
  }

  /**
   * Subscribes, replays what the client missed (or tells it `reset`), then announces the
   * stream with a `ready` event whose id is the current position. Runs synchronously, so
   * no publish can fall between the replay and the live subscription: nothing is missed
   * and nothing is sent twice. Everything written here leaves together (node:http sends one tick's writes at once).
   */
  start(starts: readonly StreamStart[], readyExtra: Record<string, unknown>, finished: boolean): void {
    const { hub, connections, metrics } = this.ctx;
    // A bound method (~50 bytes) rather than a property on the response: a property added
    // to a ServerResponse after construction grows its property store by ~300 bytes.
    this.res.on('close', this.closed.bind(this));
    connections.add(this);
    metrics.connectionsOpened.labels('sse').inc();
    this.write(`retry: ${this.ctx.retryMs}\n\n`);
    const cursor: Position[] = this.topics.map((topic, i) => startPosition(hub, topic, starts[i]!));
    if (this.topics.length > 1) this.cursor = cursor;
    let resumed = true;
    for (let i = 0; i < this.topics.length && this.phase === Phase.open; i++) {
      const topic = this.topics[i]!;
      if (this.shareKey !== undefined && this.ctx.sharing) this.ctx.sharing.subscribe(topic, this.shareKey, this);
      else hub.subscribe(topic, this);
      if (starts[i] === 'now') {
        resumed = false;
        continue;
      }
      let missed = hub.since(topic, cursor[i]!);
      if (missed.kind === 'reset') {
        resumed = false;
        cursor[i] = missed.position;
        this.write(controlFrame('reset', resetData(this.ctx, topic, missed.reason, missed.position), formatCursor(cursor)));
        // A reset to the start of a new epoch: what the new epoch holds is still replayed.
        missed = hub.since(topic, missed.position);
      }
      if (missed.kind === 'ok') for (const m of missed.messages) this.send(m, false);
    }
    if (this.phase === Phase.open) {
      const current = this.topics.map((topic) => hub.position(topic));
      this.write(controlFrame('ready', { topics: this.topics, resumed, ...readyExtra }, formatCursor(current)));
      if (this.endOnFinal && finished) this.finish();
    }
  }

  /** Hub delivery (live). */
  deliver(m: HubMessage): void {
    // Published after the token expired: never sent, even before the sweep notices.
    if (m.ts >= this.expiresAt) return this.close('token_expired');
    this.send(m, true);
  }

  /** Cluster mode: the topic's messages are no longer continuous here; the client resumes (or is reset) on reconnect. */
  interrupted(): void {
    this.close('resync');
  }

  /**
   * Writes one hub message: the shared frame, or on a multi-topic stream the shared body
   * plus this connection's id line. Only live deliveries are counted and feed the latency
   * histogram; a replayed message's age is not delivery latency.
   */
  private send(m: HubMessage, live: boolean): void {
    if (this.phase !== Phase.open) return;
    const cursor = this.cursor;
    let written: WriteResult;
    if (cursor === undefined) {
      written = this.write(m.encode(sseFrame), undefined, live ? m : undefined);
    } else {
      const i = this.topics.indexOf(m.topic);
      if (m.offset && i >= 0) cursor[i] = { epoch: m.epoch, offset: m.offset };
      written = this.write(m.encode(sseBody), m.offset ? `id: ${formatCursor(cursor)}\n\n` : '\n', live ? m : undefined);
    }
    if (written === 'ok' && this.endOnFinal && FINAL_EVENTS.has(m.event)) this.finish();
  }

  /** Server-initiated close: the reason as a last event, then end (see the header comment). */
  close(reason: CloseReason): void {
    if (!this.beginClose()) return;
    const { retryMs } = this.ctx;
    // On shutdown, spread the reconnections over a window instead of one thundering herd.
    const frame =
      reason === 'shutdown'
        ? controlFrame('shutdown', { code: reason, message: CLOSE_MESSAGES[reason] }, undefined, Math.round(retryMs / 2 + Math.random() * retryMs))
        : controlFrame('error', { code: reason, message: CLOSE_MESSAGES[reason] });
    this.write(frame);
    this.finish();
    if (reason === 'shutdown' || reason === 'slow_consumer') endTransport(this.res, reason === 'shutdown');
  }

  /** The shared sweep: heartbeat, token expiry, the budget's sweep half, and the deadline of a closing socket. */
  tick(now: number): void {
    const phase = this.phase;
    if (phase === Phase.open) {
      if (now >= this.expiresAt) return this.close('token_expired');
      if (this.sweep()) return;
      if (now - this.mark >= this.ctx.heartbeatMs) {
        this.mark = now;
        this.write(HEARTBEAT);
      }
    } else if (phase === Phase.shut && now - this.mark >= CLOSE_GRACE_MS) {
      this.res.destroy();
    }
  }

  /** The response closed (client gone, or our end() completed): free everything, once. */
  closed(): void {
    const phase = this.phase;
    if (phase === Phase.gone) return;
    if (phase < Phase.shut) this.unsubscribe();
    this.gone();
    this.ctx.connections.remove(this);
  }

  private finish(): void {
    if (this.phase >= Phase.shut) return;
    this.unsubscribe();
    this.shut();
    this.mark = Date.now();
    this.res.end();
  }

  private unsubscribe(): void {
    for (const topic of this.topics) {
      if (this.shareKey !== undefined && this.ctx.sharing) this.ctx.sharing.unsubscribe(topic, this.shareKey, this);
      else this.ctx.hub.unsubscribe(topic, this);
    }
  }
}
