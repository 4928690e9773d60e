// The connection manager: one registry for every long-lived connection (SSE streams,
// long-polls, Realtime WebSockets, dashboard feeds). It enforces the total and per-user
// caps, runs the one shared sweep that replaces per-connection timers, and drains
// everything on shutdown.
import { HttpError } from './http-errors.js';

export type Transport = 'sse' | 'poll' | 'ws' | 'dashboard';

/** Why the server ends a connection; transports turn this into an SSE event or a WS close. */
export type CloseReason = 'shutdown' | 'slow_consumer' | 'token_expired' | 'idle' | 'kicked' | 'resync';

export interface ManagedConnection {
  readonly id: string;
  readonly transport: Transport;
  /**
   * The identity the per-identity cap counts by (see `userIdentity`, `addressIdentity`).
   * Changed only by `ConnectionManager.rekey` (a Realtime socket whose join names a user).
   */
  userKey: string;
  readonly openedAt: number;
  /** Server-initiated close: tell the client why (and, on shutdown, to reconnect elsewhere), then free everything. */
  close(reason: CloseReason): void;
  /** Called from the shared sweep; a connection does its heartbeat or idle check here. */
  tick?(now: number): void;
}

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerUser: number;
  maxConnectionsPerAddress: number;
}

const ADDRESS_PREFIX = 'address:';

/** The identity of a client whose token names a user: its `sub`. */
export function userIdentity(sub: string): string {
  return `user:${sub}`;
}

/**
 * The identity of a client whose token names no user (the anon or service_role key): its
 * address, so one anonymous client filling its cap does not lock out anyone else's.
 */
export function addressIdentity(address: string): string {
  return `${ADDRESS_PREFIX}${address}`;
}

export function isAddressIdentity(key: string): boolean {
  return key.startsWith(ADDRESS_PREFIX);
}

let connectionCounter = 0;

/** A process-unique connection id, short enough for logs. */
export function nextConnectionId(prefix: string): string {
  return `${prefix}${(++connectionCounter).toString(36)}`;
}

export class ConnectionManager {
  private readonly all = new Set<ManagedConnection>();
  private readonly perUser = new Map<string, number>();
  private readonly perTransport = new Map<Transport, number>();
  private draining = false;
  private readonly emptyWaiters: (() => void)[] = [];

  constructor(private readonly limits: ConnectionLimits) {}

  get size(): number {
    return this.all.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  count(transport: Transport): number {
    return this.perTransport.get(transport) ?? 0;
  }

  countForUser(userKey: string): number {
    return this.perUser.get(userKey) ?? 0;
  }

  /**
   * Throws the HTTP answer for a connection that may not open now: 503 while draining
   * or at the total cap, 429 at the per-user cap. Both carry Retry-After.
   */
  admit(userKey: string): void {
    if (this.draining) throw new HttpError(503, 'draining', 'the gateway is shutting down; reconnect to another instance', { 'retry-after': '1' });
    if (this.all.size >= this.limits.maxConnections) {
      throw new HttpError(503, 'too_many_connections', `the gateway holds its maximum of ${this.limits.maxConnections} connections`, { 'retry-after': '5' });
    }
    this.admitIdentity(userKey);
  }

  /** 429 when the identity is at its cap (per user, or per address for clients without a user). */
  private admitIdentity(userKey: string): void {
    const byAddress = isAddressIdentity(userKey);
    const cap = byAddress ? this.limits.maxConnectionsPerAddress : this.limits.maxConnectionsPerUser;
    if (this.countForUser(userKey) >= cap) {
      const who = byAddress ? `client address ${userKey.slice(ADDRESS_PREFIX.length)} (keys without a user)` : `user ${userKey.slice(userKey.indexOf(':') + 1)}`;
      const flag = byAddress ? '--max-connections-per-address' : '--max-connections-per-user';
      throw new HttpError(429, byAddress ? 'too_many_address_connections' : 'too_many_user_connections', `${who} already has ${cap} open connections (${flag})`, { 'retry-after': '5' });
    }
  }

  /**
   * Moves an open connection to another identity (a Realtime socket opened with the anon
   * key whose join carries a user's token now counts as that user). Throws the 429 of
   * `admit` when the new identity is at its cap; the connection then stays where it was.
   */
  rekey(conn: ManagedConnection, userKey: string): void {
    if (conn.userKey === userKey) return;
    if (!this.all.has(conn)) {
      conn.userKey = userKey;
      return;
    }
    this.admitIdentity(userKey);
    this.uncount(conn.userKey);
    conn.userKey = userKey;
    this.perUser.set(userKey, this.countForUser(userKey) + 1);
  }

  private uncount(userKey: string): void {
    const n = this.countForUser(userKey) - 1;
    if (n > 0) this.perUser.set(userKey, n);
    else this.perUser.delete(userKey);
  }

  add(conn: ManagedConnection): void {
    if (this.all.has(conn)) return;
    this.all.add(conn);
    this.perUser.set(conn.userKey, this.countForUser(conn.userKey) + 1);
    this.perTransport.set(conn.transport, this.count(conn.transport) + 1);
  }

  /** Idempotent: every close path calls this, some more than once. */
  remove(conn: ManagedConnection): void {
    if (!this.all.delete(conn)) return;
    this.uncount(conn.userKey);
    this.perTransport.set(conn.transport, this.count(conn.transport) - 1);
    if (this.all.size === 0) for (const wake of this.emptyWaiters.splice(0)) wake();
  }

  /** The shared sweep: one timer for all connections instead of one per socket. */
  tick(now = Date.now()): void {
    for (const conn of this.all) conn.tick?.(now);
  }

  connections(): IterableIterator<ManagedConnection> {
    return this.all.values();
  }

  /**
   * Stops admitting, asks every connection to close with `shutdown` (clients are told
   * to reconnect elsewhere), and resolves when all are gone or `timeoutMs` passed.
   * Returns how many were still open at the deadline.
   */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    for (const conn of [...this.all]) conn.close('shutdown');
    if (this.all.size === 0) return 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.emptyWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.all.size;
  }
}
