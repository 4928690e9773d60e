// The gateway's instruments, in one per-gateway Prometheus registry (tests run several
// gateways in one process, so nothing goes to prom-client's global registry).
// Transports increment these; `/metrics` exposes them.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Transport } from './connections.js';

/** Every transport, so the connection gauge reports 0 rather than no series; a new Transport fails to compile here until listed. */
const TRANSPORT_NAMES: Record<Transport, true> = { sse: true, poll: true, ws: true, dashboard: true };
export const TRANSPORTS = Object.keys(TRANSPORT_NAMES) as Transport[];

/** Where the connection gauge reads its values at scrape time (the gateway's ConnectionManager). */
export interface ConnectionCounts {
  count(transport: Transport): number;
}

export type Direction = 'in' | 'out';

/** Latency buckets in seconds: fine below 100 ms where the targets are, coarse above. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10];

export class GatewayMetrics {
  readonly registry = new Registry();

  /** Read at scrape time from the connection manager, so it can never drift from what is really open. */
  readonly connections = new Gauge({
    name: 'fanout_connections',
    help: 'open long-lived connections by transport',
    labelNames: ['transport'],
    registers: [this.registry],
    collect: () => {
      if (!this.connectionCounts) return;
      for (const t of TRANSPORTS) this.connections.labels(t).set(this.connectionCounts.count(t));
    },
  });
  readonly connectionsOpened = new Counter({ name: 'fanout_connections_opened_total', help: 'connections accepted, by transport', labelNames: ['transport'], registers: [this.registry] });
  readonly connectionsRejected = new Counter({ name: 'fanout_connections_rejected_total', help: 'connections refused by a cap or while draining, by transport and reason', labelNames: ['transport', 'reason'], registers: [this.registry] });
  readonly messages = new Counter({ name: 'fanout_messages_total', help: 'messages by transport and direction (in = received from clients/publishers, out = written to subscribers)', labelNames: ['transport', 'direction'], registers: [this.registry] });
  readonly bytes = new Counter({ name: 'fanout_bytes_total', help: 'payload bytes by transport and direction', labelNames: ['transport', 'direction'], registers: [this.registry] });
  readonly deliveryLatency = new Histogram({ name: 'fanout_delivery_latency_seconds', help: 'publish to socket write, per delivery', labelNames: ['transport'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly errors = new Counter({ name: 'fanout_errors_total', help: 'errors by kind (bad_request, auth, rate_limit, protocol, internal, ...)', labelNames: ['kind'], registers: [this.registry] });
  readonly slowConsumerDisconnects = new Counter({ name: 'fanout_slow_consumer_disconnects_total', help: 'connections closed because unsent bytes exceeded the budget', labelNames: ['transport'], registers: [this.registry] });
  readonly publishes = new Counter({ name: 'fanout_publishes_total', help: 'messages published into the hub', registers: [this.registry] });
  readonly channels = new Gauge({ name: 'fanout_realtime_channels', help: 'joined Realtime channels (channel-socket pairs)', registers: [this.registry] });
  readonly presenceMembers = new Gauge({ name: 'fanout_presence_members', help: 'tracked presence metas across all channels', registers: [this.registry] });
  readonly joins = new Counter({ name: 'fanout_realtime_joins_total', help: 'Realtime channel joins by result', labelNames: ['result'], registers: [this.registry] });
  readonly changeFeedLag = new Histogram({ name: 'fanout_change_feed_lag_seconds', help: 'database commit to dispatch of a postgres change', buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly jwksReads = new Counter({ name: 'fanout_jwks_reads_total', help: 'reads of the --jwt-jwks key set (URL fetches, file reads) by result', labelNames: ['result'], registers: [this.registry] });
  readonly jwksKeys = new Gauge({ name: 'fanout_jwks_keys', help: 'keys held from the --jwt-jwks key set', registers: [this.registry] });
  readonly changeFeedLagLast = new Gauge({ name: 'fanout_change_feed_lag_last_seconds', help: 'lag of the most recently dispatched change', registers: [this.registry] });
  // WAL capture only: an abandoned or stuck slot makes PostgreSQL keep WAL for ever.
  readonly changeSlotLagBytes = new Gauge({ name: 'fanout_changes_slot_lag_bytes', help: 'WAL the change feed\'s replication slot holds back: pg_current_wal_lsn() - confirmed_flush_lsn', labelNames: ['slot'], registers: [this.registry] });
  readonly changeSlotLagSeconds = new Gauge({ name: 'fanout_changes_slot_lag_seconds', help: 'age of the oldest WAL the change feed\'s replication slot has not confirmed (0 when caught up)', labelNames: ['slot'], registers: [this.registry] });

  /** Per-transport children, so the fan-out loop does no label lookups. */
  private readonly children = new Map<string, { observe(v: number): void; inc(v?: number): void }>();

  private readonly connectionCounts: ConnectionCounts | undefined;

  constructor(options: { processMetrics?: boolean; connections?: ConnectionCounts } = {}) {
    this.connectionCounts = options.connections;
    // Series exist (at 0) from the first scrape, so `rate()` and dashboards see the first event too.
    for (const t of TRANSPORTS) {
      this.connectionsOpened.inc({ transport: t }, 0);
      this.slowConsumerDisconnects.inc({ transport: t }, 0);
      if (t === 'dashboard') continue;
      this.deliveryLatency.zero({ transport: t });
      for (const direction of ['in', 'out']) {
        this.messages.inc({ transport: t, direction }, 0);
        this.bytes.inc({ transport: t, direction }, 0);
      }
    }
    this.messages.inc({ transport: 'rest', direction: 'in' }, 0);
    this.bytes.inc({ transport: 'rest', direction: 'in' }, 0);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: '', eventLoopMonitoringPrecision: 10 });
  }

  /** Records one delivery: latency from publish time `ts` (ms epoch) to now, plus message and byte counts. */
  delivered(transport: Transport, ts: number, bytes: number, now = Date.now()): void {
    this.child(`lat:${transport}`, () => this.deliveryLatency.labels(transport)).observe((now - ts) / 1000);
    this.child(`msg:out:${transport}`, () => this.messages.labels(transport, 'out')).inc();
    this.child(`bytes:out:${transport}`, () => this.bytes.labels(transport, 'out')).inc(bytes);
  }

  /** Records one inbound message (a publish, a client frame). */
  received(transport: Transport | 'rest', bytes: number): void {
    this.child(`msg:in:${transport}`, () => this.messages.labels(transport, 'in')).inc();
    this.child(`bytes:in:${transport}`, () => this.bytes.labels(transport, 'in')).inc(bytes);
  }

  private child(key: string, make: () => { observe?(v: number): void; inc?(v?: number): void }): { observe(v: number): void; inc(v?: number): void } {
    let c = this.children.get(key);
    if (!c) {
      c = make() as { observe(v: number): void; inc(v?: number): void };
      this.children.set(key, c);
    }
    return c;
  }
}
