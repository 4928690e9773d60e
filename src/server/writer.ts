// The connection writer: how every SSE stream, Realtime WebSocket and dashboard-feed
// viewer writes. It owns three things the transports used to do each their own way:
//
// - Batching per event-loop turn, for a transport that batches (a WebSocket): the first
//   write of a turn corks the connection's transport and queues the connection; one
//   setImmediate for the whole process uncorks every queued connection, so each sends its
//   turn's frames in one `writev` (no timer, no closure per connection). An SSE response
//   is not queued: node:http already sends a tick's writes together (see SseWriter.cork).
// - The byte budget (`--slow-consumer-bytes`) and the one slow-consumer rule:
//     unsent bytes may pass the budget only by the transport's allowance (the largest
//     message it allows in flight: a Realtime payload; the largest frame the dashboard
//     feed has sent; 0 for SSE), and only until the next sweep.
//   A write that would pass budget + allowance is not written: it returns 'slow', and the
//   connection is closed with `slow_consumer` (each transport's own close: an SSE `error`
//   event, a WebSocket 1013, the dashboard's `close` event). Unsent bytes over the budget
//   at two sweeps in a row close it the same way (`sweep`). "Unsent" is what the
//   transport holds that the kernel has not taken: `writableLength` of the response,
//   `bufferedAmount` of the WebSocket.
// - The delivery metrics: messages and bytes out, delivery latency, slow-consumer
//   disconnects, per transport (`Delivery`, one per gateway and transport; the dashboard
//   feed has its own). The tallies reach the counters once per turn: each `DeliveryTally`
//   schedules its own setImmediate when it first records something in a turn.
//
// A gateway holds tens of thousands of connections, so the writer's state is one small
// integer in the connection object itself (the connection classes extend the adapters
// below), not an object of its own. What all connections of a transport share is in
// their `Delivery`.
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Hub, HubMessage } from '../core/hub.js';
import type { CloseReason, Transport } from './connections.js';
import type { GatewayMetrics } from './metrics.js';

/** The instruments a writer counts in. */
export type DeliveryMetrics = Pick<GatewayMetrics, 'deliveryLatency' | 'messages' | 'bytes' | 'slowConsumerDisconnects' | 'errors'>;

/** The transports that write through a connection writer (a long-poll answers once, through the metrics directly). */
export type DeliveryTransport = Extract<Transport, 'sse' | 'ws' | 'dashboard'>;

/** What a write did: written (it leaves at the end of the turn, or with node:http's own tick for SSE), refused because the connection is closing, or refused as slow (the connection is being closed). */
export type WriteResult = 'ok' | 'closed' | 'slow';

/** Where a connection is in its life, as far as writing goes. */
export const Phase = {
  /** Writes are accepted and held to the budget. */
  open: 0,
  /** A close was decided: its last words (an error event, a `system` notice) are written without the budget check. */
  lastWords: 1,
  /** Ended or closing: nothing more is written; the transport flushes what it holds. */
  shut: 2,
  /** The transport is gone. */
  gone: 3,
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

// The writer's bits of a connection: the phase, and two flags.
const PHASE_MASK = 3;
/** Corked this turn and in the end-of-turn queue. */
const QUEUED = 4;
/** Unsent bytes were over the budget at the previous sweep. */
const OVER_BUDGET = 8;

/** Latency observations per published message at most; beyond it deliveries are sampled evenly. */
export const LATENCY_SAMPLES_PER_MESSAGE = 64;

/**
 * Delivery metrics for the fan-out loop, which runs once per subscriber per message and
 * must stay cheap: prom-client costs about 1 µs per call, 20 ms for one event to 19,000
 * streams. Messages and bytes are tallied here and added to the counters once per turn
 * (exact: the first tally of a turn schedules one setImmediate, one per tally and not per
 * connection, that flushes it); the latency histogram gets every delivery of a message up to
 * LATENCY_SAMPLES_PER_MESSAGE subscribers and an even sample of the loop beyond that.
 */
export class DeliveryTally {
  private messages = 0;
  private bytes = 0;
  private current: HubMessage | undefined;
  private index = 0;
  private stride = 1;
  private readonly latency: { observe(seconds: number): void };
  private readonly messagesOut: { inc(n: number): void };
  private readonly bytesOut: { inc(n: number): void };
  /** The end-of-turn flush, bound once. */
  private readonly flushLater = (): void => this.flush();

  constructor(
    private readonly hub: Pick<Hub, 'subscriberCount'>,
    metrics: DeliveryMetrics,
    transport: DeliveryTransport,
  ) {
    this.latency = metrics.deliveryLatency.labels(transport);
    this.messagesOut = metrics.messages.labels(transport, 'out');
    this.bytesOut = metrics.bytes.labels(transport, 'out');
  }

  /** A hub message delivered live: counted, and its latency sampled (see the class comment). */
  record(m: HubMessage, bytes: number): void {
    this.count(bytes);
    if (m !== this.current) {
      this.current = m;
      this.index = 0;
      this.stride = Math.max(1, Math.floor(this.hub.subscriberCount(m.topic) / LATENCY_SAMPLES_PER_MESSAGE));
    }
    if (this.index++ % this.stride === 0) this.latency.observe((Date.now() - m.ts) / 1000);
  }

  /** A message that is not a hub message but has a publish time (a database change's commit): counted, latency observed. */
  recordAt(publishedAt: number, bytes: number): void {
    this.count(bytes);
    this.latency.observe((Date.now() - publishedAt) / 1000);
  }

  /** A message without a publish time (a reply, a notice): counted only. The first count of a turn schedules the flush. */
  count(bytes: number): void {
    if (this.messages++ === 0) setImmediate(this.flushLater);
    this.bytes += bytes;
  }

  /** Adds the tallies to the counters: at the end of every turn that recorded something (or sooner, when called). */
  flush(): void {
    if (this.messages === 0) return;
    this.messagesOut.inc(this.messages);
    this.bytesOut.inc(this.bytes);
    this.messages = 0;
    this.bytes = 0;
    this.current = undefined;
  }
}

/** What every connection of one transport shares: its budget and its metrics. One per gateway and transport. */
export class Delivery {
  readonly tally: DeliveryTally;
  /** Unsent bytes a connection may hold for longer than a sweep (`--slow-consumer-bytes`). */
  readonly budgetBytes: number;
  /** What a write may never pass: the budget plus the transport's largest message in flight (raised by `allow`). */
  limitBytes: number;
  private readonly slowDisconnects: { inc(): void };
  private readonly slowErrors: { inc(): void };

  constructor(options: { transport: DeliveryTransport; budgetBytes: number; allowanceBytes: number; hub: Pick<Hub, 'subscriberCount'>; metrics: DeliveryMetrics }) {
    const { transport, metrics } = options;
    this.tally = new DeliveryTally(options.hub, metrics, transport);
    this.budgetBytes = options.budgetBytes;
    this.limitBytes = options.budgetBytes + options.allowanceBytes;
    this.slowDisconnects = metrics.slowConsumerDisconnects.labels(transport);
    this.slowErrors = metrics.errors.labels('slow_consumer');
  }

  /**
   * A message of `bytes` will be sent whole, however large: the allowance grows to it if
   * it is the largest yet. For a transport whose messages have no configured maximum (the
   * dashboard feed's frames, its opening frame with history), called before writing one.
   */
  allow(bytes: number): void {
    const limit = this.budgetBytes + bytes;
    if (limit > this.limitBytes) this.limitBytes = limit;
  }

  countSlowConsumer(): void {
    this.slowDisconnects.inc();
    this.slowErrors.inc();
  }
}

/** Corked connections with writes this turn; swapped out by the flush, so a write during it queues for the next turn. */
let queued: ConnectionWriter[] = [];

/**
 * The writer half of a connection (see the header comment). A transport adapter below
 * supplies the three transport operations; the connection supplies its `Delivery` and
 * its own `close`, which must call `beginClose` (or `shut`) first.
 */
export abstract class ConnectionWriter {
  private wire: number = Phase.open;

  protected abstract get delivery(): Delivery;
  /** Bytes written to the transport that the kernel has not taken yet. */
  protected abstract unsentBytes(): number;
  /**
   * Holds the transport's writes for the end-of-turn flush and returns true; or returns
   * false for a transport that does not batch per turn (its writes leave as they are
   * made, and the connection is not queued).
   */
  protected abstract cork(): boolean;
  /** Sends what `cork` held: at the end of the turn. */
  protected abstract uncork(): void;
  abstract close(reason: CloseReason): void;

  protected get phase(): Phase {
    return (this.wire & PHASE_MASK) as Phase;
  }

  /**
   * Admits a write of `bytes` and returns 'ok', after which the adapter writes; the first
   * of a turn corks the transport and queues the connection for the end-of-turn flush,
   * when the transport batches. Refuses it when the connection is shut, or when it would
   * pass the budget: then the connection is closed as a slow consumer.
   */
  protected admit(bytes: number): WriteResult {
    const wire = this.wire;
    const phase = wire & PHASE_MASK;
    if (phase >= Phase.shut) return 'closed';
    if (phase === Phase.open && this.unsentBytes() + bytes > this.delivery.limitBytes) {
      this.closeSlow();
      return 'slow';
    }
    if ((wire & QUEUED) === 0 && this.cork()) {
      this.wire = wire | QUEUED;
      if (queued.length === 0) setImmediate(ConnectionWriter.endTurn);
      queued.push(this);
    }
    return 'ok';
  }

  /**
   * The budget's sweep half, from the shared sweep: over the budget at two sweeps in a row,
   * the client is not draining what it is sent. Returns true when it closed the connection.
   */
  protected sweep(): boolean {
    const wire = this.wire;
    if ((wire & PHASE_MASK) !== Phase.open) return false;
    if (this.unsentBytes() <= this.delivery.budgetBytes) {
      this.wire = wire & ~OVER_BUDGET;
      return false;
    }
    if ((wire & OVER_BUDGET) === 0) {
      this.wire = wire | OVER_BUDGET;
      return false;
    }
    this.closeSlow();
    return true;
  }

  /** Starts a close: returns false if one already started; else the last words may be written. */
  protected beginClose(): boolean {
    if ((this.wire & PHASE_MASK) !== Phase.open) return false;
    this.wire = (this.wire & ~PHASE_MASK) | Phase.lastWords;
    return true;
  }

  /** Nothing more is written; what this turn queued still leaves at its end. */
  protected shut(): void {
    if ((this.wire & PHASE_MASK) < Phase.shut) this.wire = (this.wire & QUEUED) | Phase.shut;
  }

  /** The transport is gone. */
  protected gone(): void {
    this.wire = (this.wire & QUEUED) | Phase.gone;
  }

  private closeSlow(): void {
    this.delivery.countSlowConsumer();
    this.close('slow_consumer');
  }

  /** End of the turn: every queued connection's frames leave. */
  private static endTurn(this: void): void {
    const batch = queued;
    queued = [];
    for (const conn of batch) {
      conn.wire &= ~QUEUED;
      conn.uncork();
    }
  }
}

/**
 * The SSE adapter: a node:http ServerResponse, or the HTTP/2 compatibility response used
 * over TLS (which has the same cork, uncork, write and writableLength).
 */
export abstract class SseWriter extends ConnectionWriter {
  constructor(protected readonly res: ServerResponse) {
    super();
  }

  /**
   * Writes one frame, or a shared frame body plus this connection's own tail (its id
   * line), admitted as one. Only a live hub delivery (`live`) counts in the delivery
   * metrics: not control frames, heartbeats or replayed history.
   */
  protected write(chunk: Buffer | string, tail?: string, live?: HubMessage): WriteResult {
    const bytes = tail === undefined ? chunk.length : chunk.length + tail.length;
    const admitted = this.admit(bytes);
    if (admitted !== 'ok') return admitted;
    this.res.write(chunk);
    if (tail !== undefined) this.res.write(tail);
    if (live) this.delivery.tally.record(live, bytes);
    return 'ok';
  }

  protected unsentBytes(): number {
    return this.res.writableLength;
  }

  /**
   * Not held to the end of the turn: node:http already sends one response's writes of a
   * tick together (it corks on the first and uncorks on the next tick), and an SSE stream
   * rarely gets two events in one turn. Holding them to the setImmediate instead kept
   * frames the gateway had stamped unsent across the rest of the turn's work (the POST's
   * own answer, other requests), where a stall of the process showed in the gateway's
   * own delivery stamp (test/load/stall.test.ts). So the stream is not queued either:
   * its delivery tally flushes itself.
   */
  protected cork(): boolean {
    return false;
  }

  /** Never called: `cork` holds nothing. */
  protected uncork(): void {}
}

const TEXT = { binary: false } as const;
const BINARY = { binary: true } as const;

/** The WebSocket adapter: a `ws` socket, corked through the upgraded TCP socket under it. */
export abstract class WebSocketWriter extends ConnectionWriter {
  constructor(
    protected readonly ws: WebSocket,
    /** The upgraded TCP socket under `ws`. */
    private readonly tcp: Duplex,
  ) {
    super();
  }

  /**
   * Writes one encoded frame as a text or binary message. Every frame counts in the
   * delivery metrics; `published` (a hub message, or a database change's commit time)
   * also feeds the delivery latency.
   */
  protected write(frame: Buffer, binary: boolean, published?: HubMessage | number): WriteResult {
    const admitted = this.admit(frame.length);
    if (admitted !== 'ok') return admitted;
    this.ws.send(frame, binary ? BINARY : TEXT);
    const { tally } = this.delivery;
    if (published === undefined) tally.count(frame.length);
    else if (typeof published === 'number') tally.recordAt(published, frame.length);
    else tally.record(published, frame.length);
    return 'ok';
  }

  protected unsentBytes(): number {
    return this.ws.bufferedAmount;
  }

  protected cork(): boolean {
    this.tcp.cork();
    return true;
  }

  protected uncork(): void {
    this.tcp.uncork();
  }
}
