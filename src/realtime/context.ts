// What every Realtime socket, channel and REST handler of one gateway shares: the
// services Realtime depends on (`RealtimeDeps`, exactly what it uses and nothing more),
// the presence registry, the gateway-wide join counter, the limits from the
// configuration, and pre-resolved metric children (no label lookups per frame).
import type { IncomingMessage } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../core/log.js';
import type { GatewayConfig } from '../core/config.js';
import type { Hub } from '../core/hub.js';
import type { Bus } from '../bus/types.js';
import type { DatabaseServices } from '../changes/types.js';
import type { ConnectionManager } from '../server/connections.js';
import type { GatewayMetrics } from '../server/metrics.js';
import type { Router } from '../server/router.js';
import type { IdempotencyKeys } from '../server/idempotency.js';
import type { Lifecycle } from '../server/services.js';
import { Delivery } from '../server/writer.js';
import { AuthError, type Auth } from '../core/auth.js';
import { isAddressIdentity } from '../server/connections.js';
import { PresenceRegistry } from './presence.js';
import { IdentityLimits, TokenBucket } from './limits.js';

/** The configuration Realtime reads. */
export type RealtimeConfig = Pick<
  GatewayConfig,
  | 'realtimeMaxChannelsPerClient'
  | 'realtimeMaxEventsPerSecond'
  | 'realtimeEventBurst'
  | 'realtimeSocketJoinsPerSecond'
  | 'realtimeMaxBindingsPerJoin'
  | 'realtimeMaxPayloadKb'
  | 'realtimePresenceMaxCalls'
  | 'realtimePresenceWindowMs'
  | 'realtimeIdleTimeoutMs'
  | 'realtimeConnectErrorBackoffMs'
  | 'realtimeChannelErrorBackoffMs'
  | 'realtimeReplicationReadyTimeoutMs'
  | 'realtimeMaxJoinsPerSecond'
  | 'realtimeUserJoinsPerSecond'
  | 'realtimeUserJoinBurst'
  | 'realtimeUserEventsPerSecond'
  | 'realtimeUserEventBurst'
  | 'realtimeMaxFrameBytes'
  | 'slowConsumerBytes'
  | 'busNodeTimeoutMs'
>;

/** The instruments Realtime increments; the context resolves their label children once. */
export type RealtimeMetricsSource = Pick<
  GatewayMetrics,
  'channels' | 'presenceMembers' | 'joins' | 'errors' | 'messages' | 'bytes' | 'deliveryLatency' | 'slowConsumerDisconnects' | 'connectionsOpened' | 'connectionsRejected' | 'received'
>;

/** Everything the Realtime module uses from the rest of the gateway, and nothing else. */
export interface RealtimeDeps {
  config: RealtimeConfig;
  log: Logger;
  hub: Hub;
  /** The bus: when it is shared with other nodes (`shared`), presence is kept in its store too. */
  bus: Bus;
  auth: Pick<Auth, 'verify'>;
  metrics: RealtimeMetricsSource;
  connections: Pick<ConnectionManager, 'admit' | 'add' | 'remove' | 'rekey' | 'countForUser'>;
  /** The client's address (the peer, or what a trusted proxy forwarded). */
  clientAddress(req: IncomingMessage): string;
  router: Pick<Router, 'on'>;
  idempotency: Pick<IdempotencyKeys, 'run'>;
  /** Change feed, channel authorizer and broadcast archive; undefined without a database. */
  database: DatabaseServices | undefined;
  /** The shared sweep, shutdown hooks and the WebSocket upgrade dispatch. */
  lifecycle: Lifecycle;
}

/** Metric children resolved once: the frame and delivery paths do no label lookups. */
export interface RealtimeMetrics {
  /** Joined channels (channel-socket pairs). */
  channels: { inc(): void; dec(): void };
  presenceMembers: { set(value: number): void };
  /** Counts a join by result (`ok`, `unauthorized`, `rate_limited`, ...). */
  join(result: string): void;
  /** One frame received from a client. */
  received(bytes: number): void;
  connectionOpened(): void;
  connectionRejected(reason: string): void;
}

export interface RealtimeLimits {
  maxChannelsPerClient: number;
  maxEventsPerSecond: number;
  /** Burst of the per-socket message bucket. */
  eventBurst: number;
  /** Per-socket join bucket: refill rate (its burst is maxChannelsPerClient). */
  socketJoinsPerSecond: number;
  maxBindingsPerJoin: number;
  /** Largest payload in bytes: the configured KB × 1000 plus Supabase's 500-byte slack. */
  maxPayloadBytes: number;
  presenceMaxCalls: number;
  presenceWindowMs: number;
  idleTimeoutMs: number;
  connectErrorBackoffMs: number;
  channelErrorBackoffMs: number;
  replicationReadyTimeoutMs: number;
}

export interface RealtimeContext {
  log: Logger;
  hub: Hub;
  auth: Pick<Auth, 'verify'>;
  connections: RealtimeDeps['connections'];
  database: DatabaseServices | undefined;
  /** True when presence must also be read from the bus's store (the bus is shared with other nodes). */
  sharedPresence: boolean;
  metrics: RealtimeMetrics;
  limits: RealtimeLimits;
  presence: PresenceRegistry;
  /**
   * Joins across the gateway: a bucket sized to what the machine can take. Per-identity
   * buckets (`identities`) sit in front of it, so no one identity can spend it.
   */
  joins: TokenBucket;
  /** Join and message buckets per identity (user, or client address for keys without a user). */
  identities: IdentityLimits;
  /** The byte budget and delivery metrics of every socket (the connection writer's, server/writer.ts). */
  delivery: Delivery;
  /** Counts an error by kind (bad_request, protocol, auth, rate_limit, slow_consumer, ...). */
  error(kind: string): void;
  /**
   * One copy of a string many sockets hold (the project's anon key is every client's
   * token, an address identity is every socket's from that address, a channel's topic is
   * every member's): a string that was seen recently comes back as the copy kept, so
   * thousands of sockets share it.
   */
  intern(value: string): string;
}

/** How many distinct strings `intern` keeps; past it, it starts over (a bound, not a cache policy). */
const INTERN_LIMIT = 4096;

export function createRealtimeContext(deps: RealtimeDeps): RealtimeContext {
  const { config } = deps;
  const maxPayloadBytes = config.realtimeMaxPayloadKb * 1000 + 500;
  const log = deps.log.child({ module: 'realtime' });
  const errors = labelled((kind) => deps.metrics.errors.labels(kind));
  const interned = new Map<string, string>();
  return {
    log,
    hub: deps.hub,
    auth: deps.auth,
    connections: deps.connections,
    database: deps.database,
    sharedPresence: deps.bus.shared,
    metrics: resolveMetrics(deps.metrics),
    limits: {
      maxChannelsPerClient: config.realtimeMaxChannelsPerClient,
      maxEventsPerSecond: config.realtimeMaxEventsPerSecond,
      eventBurst: config.realtimeEventBurst,
      socketJoinsPerSecond: config.realtimeSocketJoinsPerSecond,
      maxBindingsPerJoin: config.realtimeMaxBindingsPerJoin,
      maxPayloadBytes,
      presenceMaxCalls: config.realtimePresenceMaxCalls,
      presenceWindowMs: config.realtimePresenceWindowMs,
      idleTimeoutMs: config.realtimeIdleTimeoutMs,
      connectErrorBackoffMs: config.realtimeConnectErrorBackoffMs,
      channelErrorBackoffMs: config.realtimeChannelErrorBackoffMs,
      replicationReadyTimeoutMs: config.realtimeReplicationReadyTimeoutMs,
    },
    presence: new PresenceRegistry(deps.hub, (n) => deps.metrics.presenceMembers.set(n), deps.bus.shared ? deps.bus : undefined, log),
    joins: new TokenBucket(config.realtimeMaxJoinsPerSecond, config.realtimeMaxJoinsPerSecond),
    identities: new IdentityLimits({
      joinsPerSecond: config.realtimeUserJoinsPerSecond,
      joinBurst: config.realtimeUserJoinBurst,
      eventsPerSecond: config.realtimeUserEventsPerSecond,
      eventBurst: config.realtimeUserEventBurst,
    }),
    // One message of the largest payload may be in flight beyond the budget.
    delivery: new Delivery({ transport: 'ws', budgetBytes: config.slowConsumerBytes, allowanceBytes: maxPayloadBytes, hub: deps.hub, metrics: deps.metrics }),
    error(kind) {
      errors(kind).inc();
    },
    intern(value) {
      const kept = interned.get(value);
      if (kept !== undefined) return kept;
      if (interned.size >= INTERN_LIMIT) interned.clear();
      interned.set(value, value);
      return value;
    },
  };
}

/** A label's child, looked up once per label value and then kept. */
function labelled<T>(make: (label: string) => T): (label: string) => T {
  const children = new Map<string, T>();
  return (label) => {
    let child = children.get(label);
    if (child === undefined) children.set(label, (child = make(label)));
    return child;
  };
}

function resolveMetrics(metrics: RealtimeMetricsSource): RealtimeMetrics {
  const joins = labelled((result) => metrics.joins.labels(result));
  const rejected = labelled((reason) => metrics.connectionsRejected.labels('ws', reason));
  const messagesIn = metrics.messages.labels('ws', 'in');
  const bytesIn = metrics.bytes.labels('ws', 'in');
  const opened = metrics.connectionsOpened.labels('ws');
  return {
    channels: metrics.channels,
    presenceMembers: metrics.presenceMembers,
    join: (result) => joins(result).inc(),
    received(bytes) {
      messagesIn.inc();
      bytesIn.inc(bytes);
    },
    connectionOpened: () => opened.inc(),
    connectionRejected: (reason) => rejected(reason).inc(),
  };
}

/** Waits without holding the process open (error back-off sleeps; 0 in tests). */
export async function backoff(ms: number): Promise<void> {
  if (ms > 0) await delay(ms, undefined, { ref: false });
}

/** A join refused because of the token, worded as the real server's join errors (reference §2.4). */
export function joinAuthReason(err: unknown): string {
  if (!(err instanceof AuthError)) return 'Unknown Error on Channel';
  switch (err.kind) {
    case 'expired':
      return `InvalidJWTToken: ${err.message}`;
    case 'claims':
      return `InvalidJWTToken: ${err.message}`;
    case 'role':
      return `InvalidJWTToken: ${err.message}`;
    case 'signature':
      return `JwtSignatureError: ${err.message}`;
    case 'signer':
      return `JwtSignerError: ${err.message}`;
    default:
      return `MalformedJWT: The token provided is not a valid JWT`;
  }
}

/**
 * Which join limit a new join of `identity` is over, worded for the refusal ("per user …:
 * 20/s, burst 200"), or undefined when it may join. Reads the buckets without spending.
 */
export function joinLimitReached(ctx: RealtimeContext, identity: string, now = Date.now()): string | undefined {
  if (ctx.identities.joinsExhausted(identity, now)) return identityLimitText(identity, ctx.identities.of(identity, now).joins);
  if (ctx.joins.empty(now)) return `gateway-wide: ${ctx.joins.describe()}`;
  return undefined;
}

/** "per user u1: 20/s, burst 200" or "per client address 127.0.0.2: …". */
export function identityLimitText(identity: string, bucket: { describe(): string }): string {
  const sep = identity.indexOf(':');
  const who = isAddressIdentity(identity) ? `per client address ${identity.slice(sep + 1)}` : `per user ${identity.slice(sep + 1)}`;
  return `${who}: ${bucket.describe()}`;
}
