// A stand-in for a streaming transport, for driving the gateway's metrics from a test:
// each "connection" registers with the connection manager, subscribes to a hub topic and
// records every delivery through GatewayMetrics exactly as a real transport does. The
// dashboard feed's own connections are real sockets; this covers transports whose
// modules live on other branches (e.g. `poll`).
import type { Gateway } from '../../src/server/gateway.js';
import { nextConnectionId, type ManagedConnection, type Transport } from '../../src/server/connections.js';
import type { HubMessage } from '../../src/core/hub.js';

export interface StandInConnection extends ManagedConnection {
  received: HubMessage[];
  end(): void;
}

export function openStandIn(gateway: Gateway, transport: Transport, topic: string, userKey = 'user-1'): StandInConnection {
  gateway.connections.admit(userKey);
  const conn: StandInConnection = {
    id: nextConnectionId('t'),
    transport,
    userKey,
    openedAt: Date.now(),
    received: [],
    close: () => conn.end(),
    end() {
      gateway.hub.unsubscribe(topic, subscriber);
      gateway.connections.remove(conn);
    },
  };
  const subscriber = {
    deliver(msg: HubMessage) {
      conn.received.push(msg);
      gateway.metrics.delivered(transport, msg.ts, Buffer.byteLength(JSON.stringify(msg.data)));
    },
  };
  gateway.connections.add(conn);
  gateway.metrics.connectionsOpened.labels(transport).inc();
  gateway.hub.subscribe(topic, subscriber);
  return conn;
}
