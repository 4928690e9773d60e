// Builds the bus the configuration asks for and connects it to the gateway's hub: live
// messages and resyncs go to the hub, connection state to the log and metrics. What HTTP
// shows of it (`/api/bus`, the `bus` readiness check) is the server's: src/server/bus-status.ts.
import { Gauge, Counter, type Registry } from 'prom-client';
import { MemoryCluster } from './memory.js';
import type { GatewayConfig } from '../core/config.js';
import type { Hub } from '../core/hub.js';
import type { Logger } from '../core/log.js';
import { NatsBus } from './nats.js';
import { RedisBus } from './redis.js';
import type { Bus } from './types.js';

/** The bus `--bus` names: the in-process engine of this gateway alone (`memory`), or a cluster's Redis or NATS. */
export function createBus(config: GatewayConfig, log: Logger): Bus {
  const common = {
    prefix: config.busPrefix,
    historySize: config.historySize,
    historyTtlMs: config.historyTtlMs,
    nodeTimeoutMs: config.busNodeTimeoutMs,
    recordTtlMs: config.contentTtlMs,
    dedupeTtlMs: config.idempotencyWindowMs,
    log: log.child({ component: 'bus' }),
  };
  switch (config.bus) {
    case 'memory':
      return new MemoryCluster(config.historySize, { private: true, historyTtlMs: config.historyTtlMs, dedupeTtlMs: config.idempotencyWindowMs }).connect(undefined, config.busNodeTimeoutMs);
    case 'redis':
      return new RedisBus({ ...common, url: config.redisUrl });
    case 'nats':
      return new NatsBus({ ...common, servers: config.natsUrl });
  }
}

/** Bus metrics, registered in the gateway's Prometheus registry. */
export class BusMetrics {
  readonly connected: Gauge;
  readonly replicaProblems: Counter;
  readonly resyncs: Counter;
  readonly received: Counter;
  readonly subscriptions: Gauge;
  readonly echoesDropped: Counter;
  /** Messages handed over by the bus client so far. */
  receivedCount = 0;

  constructor(registry: Registry, bus: Bus, hub: Hub) {
    const registers = [registry];
    this.connected = new Gauge({ name: 'fanout_bus_connected', help: '1 while the bus is connected', labelNames: ['bus'], registers, collect: () => this.connected.labels(bus.kind).set(bus.connected ? 1 : 0) });
    // Counted in a plain number on the hot path and added to the counter at scrape time.
    let counted = 0;
    this.received = new Counter({
      name: 'fanout_bus_messages_received_total',
      help: 'messages the bus client handed to this node (interest routing: only those of topics its clients use)',
      labelNames: ['bus'],
      registers,
      collect: () => {
        this.received.labels(bus.kind).inc(this.receivedCount - counted);
        counted = this.receivedCount;
      },
    });
    this.subscriptions = new Gauge({ name: 'fanout_bus_subscriptions', help: 'topics this node is subscribed to on the bus', labelNames: ['bus'], registers, collect: () => this.subscriptions.labels(bus.kind).set(bus.subscriptions) });
    let echoes = 0;
    this.echoesDropped = new Counter({
      name: 'fanout_bus_echoes_dropped_total',
      help: "this node's own messages that came back from the bus and were dropped (delivered here first)",
      labelNames: ['bus'],
      registers,
      collect: () => {
        this.echoesDropped.labels(bus.kind).inc(hub.echoesDropped - echoes);
        echoes = hub.echoesDropped;
      },
    });
    this.replicaProblems = new Counter({ name: 'fanout_bus_replica_problems_total', help: 'replica gaps the bus could not fill, failed loads and epoch changes, by kind', labelNames: ['kind'], registers });
    this.resyncs = new Counter({ name: 'fanout_bus_resyncs_total', help: 'times the live feed came back after an interruption and every replica was re-checked', registers });
  }
}

export interface BusAttachment {
  bus: Bus;
  hub: Hub;
  log: Logger;
  metrics: BusMetrics;
}

/** Starts the bus with the hub as its receiver, logging its connection state. */
export async function startBus({ bus, hub, log, metrics }: BusAttachment): Promise<void> {
  let wasConnected = true;
  await bus.start({
    message: (envelope) => {
      metrics.receivedCount++;
      hub.receive(envelope);
    },
    resync: () => {
      metrics.resyncs.inc();
      hub.resync();
    },
    status: (connected, detail) => {
      if (connected === wasConnected) return;
      wasConnected = connected;
      if (connected) log.info({ bus: bus.kind, detail }, 'bus connected');
      else log.warn({ bus: bus.kind, detail }, 'bus connection lost; publishes answer 503 until it is back');
    },
  });
  if (!bus.connected) log.warn({ bus: bus.kind, detail: bus.detail }, 'bus not reachable at start-up; retrying in the background');
}
