// What every Realtime socket, channel and REST handler of one gateway shares: the
// gateway's parts, the presence registry, the gateway-wide join counter, the limits
// from the configuration, and pre-resolved metric children (no label lookups per frame).
import { setTimeout as delay } from 'node:timers/promises';
import type { Counter } from 'prom-client';
import type { Gateway } from '../server/gateway.js';
import type { Logger } from '../core/log.js';
import { AuthError } from '../core/auth.js';
import { PresenceRegistry } from './presence.js';
import { RateCounter } from './limits.js';

export interface RealtimeLimits {
  maxChannelsPerClient: number;
  maxEventsPerSecond: number;
  /** Largest payload in bytes: the configured KB × 1000 plus Supabase's 500-byte slack. */
  maxPayloadBytes: number;
  presenceMaxCalls: number;
  presenceWindowMs: number;
  idleTimeoutMs: number;
  connectErrorBackoffMs: number;
  channelErrorBackoffMs: number;
  slowConsumerBytes: number;
  replicationReadyTimeoutMs: number;
}

export interface RealtimeContext {
  gateway: Gateway;
  log: Logger;
  limits: RealtimeLimits;
  presence: PresenceRegistry;
  /** Joins per second across the gateway (Supabase counts them per tenant; one gateway is one tenant). */
  joins: RateCounter;
  out: { messages: Counter.Internal; bytes: Counter.Internal };
  /** Counts an error by kind (bad_request, protocol, auth, rate_limit, slow_consumer, ...). */
  error(kind: string): void;
  /**
   * Calls `target.flushWrites()` at the end of this event-loop turn. Sockets cork their TCP
   * stream on the first frame of a turn and uncork it here, so every frame of the turn
   * leaves in one `writev` instead of one syscall per frame; one shared setImmediate
   * flushes them all (no per-connection timer).
   */
  flushAtEndOfTurn(target: { flushWrites(): void }): void;
}

export function createRealtimeContext(gateway: Gateway): RealtimeContext {
  const { config, metrics } = gateway;
  const errorChildren = new Map<string, Counter.Internal>();
  const pending: { flushWrites(): void }[] = [];
  const flush = (): void => {
    for (const target of pending.splice(0)) target.flushWrites();
  };
  const log = gateway.log.child({ module: 'realtime' });
  return {
    gateway,
    log,
    limits: {
      maxChannelsPerClient: config.realtimeMaxChannelsPerClient,
      maxEventsPerSecond: config.realtimeMaxEventsPerSecond,
      maxPayloadBytes: config.realtimeMaxPayloadKb * 1000 + 500,
      presenceMaxCalls: config.realtimePresenceMaxCalls,
      presenceWindowMs: config.realtimePresenceWindowMs,
      idleTimeoutMs: config.realtimeIdleTimeoutMs,
      connectErrorBackoffMs: config.realtimeConnectErrorBackoffMs,
      channelErrorBackoffMs: config.realtimeChannelErrorBackoffMs,
      slowConsumerBytes: config.slowConsumerBytes,
      replicationReadyTimeoutMs: config.realtimeReplicationReadyTimeoutMs,
    },
    presence: new PresenceRegistry(gateway.hub, (n) => metrics.presenceMembers.set(n), gateway.bus.shared ? gateway.bus : undefined, log),
    joins: new RateCounter(config.realtimeMaxJoinsPerSecond),
    out: { messages: metrics.messages.labels('ws', 'out'), bytes: metrics.bytes.labels('ws', 'out') },
    error(kind) {
      let child = errorChildren.get(kind);
      if (!child) errorChildren.set(kind, (child = metrics.errors.labels(kind)));
      child.inc();
    },
    flushAtEndOfTurn(target) {
      if (pending.length === 0) setImmediate(flush);
      pending.push(target);
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
    case 'signature':
      return `JwtSignatureError: ${err.message}`;
    case 'signer':
      return `JwtSignerError: ${err.message}`;
    default:
      return `MalformedJWT: The token provided is not a valid JWT`;
  }
}
