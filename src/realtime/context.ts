// What every Realtime socket, channel and REST handler of one gateway shares: the
// gateway's parts, the presence registry, the gateway-wide join counter, the limits
// from the configuration, and pre-resolved metric children (no label lookups per frame).
import { setTimeout as delay } from 'node:timers/promises';
import type { Counter } from 'prom-client';
import type { Services } from '../server/services.js';
import { Delivery } from '../server/writer.js';
import type { Logger } from '../core/log.js';
import { AuthError } from '../core/auth.js';
import { isAddressIdentity } from '../server/connections.js';
import { PresenceRegistry } from './presence.js';
import { IdentityLimits, TokenBucket } from './limits.js';

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

/** What Realtime uses of the gateway; `database` is absent when no changes module is loaded. */
export type RealtimeDeps = Pick<Services, 'config' | 'log' | 'hub' | 'bus' | 'auth' | 'metrics' | 'connections' | 'clientAddress' | 'router' | 'idempotency' | 'lifecycle'> &
  Partial<Pick<Services, 'database'>>;

export interface RealtimeContext {
  gateway: RealtimeDeps;
  log: Logger;
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
}

export function createRealtimeContext(gateway: RealtimeDeps): RealtimeContext {
  const { config, metrics } = gateway;
  const errorChildren = new Map<string, Counter.Internal>();
  const maxPayloadBytes = config.realtimeMaxPayloadKb * 1000 + 500;
  const log = gateway.log.child({ module: 'realtime' });
  return {
    gateway,
    log,
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
    presence: new PresenceRegistry(gateway.hub, (n) => metrics.presenceMembers.set(n), gateway.bus.shared ? gateway.bus : undefined, log),
    joins: new TokenBucket(config.realtimeMaxJoinsPerSecond, config.realtimeMaxJoinsPerSecond),
    identities: new IdentityLimits({
      joinsPerSecond: config.realtimeUserJoinsPerSecond,
      joinBurst: config.realtimeUserJoinBurst,
      eventsPerSecond: config.realtimeUserEventsPerSecond,
      eventBurst: config.realtimeUserEventBurst,
    }),
    // One message of the largest payload may be in flight beyond the budget.
    delivery: new Delivery({ transport: 'ws', budgetBytes: config.slowConsumerBytes, allowanceBytes: maxPayloadBytes, hub: gateway.hub, metrics }),
    error(kind) {
      let child = errorChildren.get(kind);
      if (!child) errorChildren.set(kind, (child = metrics.errors.labels(kind)));
      child.inc();
    },
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
