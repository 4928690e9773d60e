// Rate limits as Supabase Realtime evaluates them (reference §8.1): a rolling average
// over 60 s that trips when it reaches the limit and clears when it falls below.
// Counters are advanced by the gateway's shared sweep (`tick`), never by their own timers,
// and cost a few numbers each, so one per socket is affordable at 10,000 sockets.

/** Buckets per window: 12 × 5 s for the default 60 s window, as the real server uses. */
const BUCKETS = 12;

export class RateCounter {
  private readonly bucketMs: number;
  /** Counts of closed buckets, allocated on first use (most sockets never send anything). */
  private ring: Uint32Array | undefined;
  private ringStart = 0;
  private closed = 0;
  private closedSum = 0;
  private current = 0;
  private currentStart: number;
  private sinceTick = 0;
  private lastTick: number;
  /** Average events per second over the window, as of the last tick. */
  avg = 0;
  /** Rate of the events counted since the previous tick (per second, over at least 1 s). */
  recentRate = 0;
  /** True from the tick where `avg >= limit` until the tick where `avg < limit`. */
  triggered = false;

  constructor(
    readonly limit: number,
    readonly windowMs = 60_000,
    now = Date.now(),
  ) {
    this.bucketMs = Math.max(1, Math.floor(windowMs / BUCKETS));
    this.currentStart = now;
    this.lastTick = now;
  }

  add(n = 1): void {
    this.current += n;
    this.sinceTick += n;
  }

  /** True when nothing was counted in the window: the owner may drop the counter. */
  get idle(): boolean {
    return this.current === 0 && this.closedSum === 0 && !this.triggered;
  }

  /** Closes elapsed buckets and re-evaluates the limit. Returns true when the limit is tripped. */
  tick(now = Date.now()): boolean {
    const sinceLast = now - this.lastTick;
    this.recentRate = (this.sinceTick * 1000) / Math.max(1000, sinceLast);
    this.sinceTick = 0;
    this.lastTick = now;
    this.rotate(now);
    // Average over the time the window covers so far, but at least one second, so a few
    // events right after a socket opens are not read as a huge rate.
    const covered = this.closed * this.bucketMs + (now - this.currentStart);
    this.avg = ((this.closedSum + this.current) * 1000) / Math.max(1000, Math.min(covered, this.windowMs));
    if (this.triggered) {
      if (this.avg < this.limit) this.triggered = false;
    } else if (this.avg >= this.limit) {
      this.triggered = true;
    }
    return this.triggered;
  }

  private rotate(now: number): void {
    if (now - this.currentStart < this.bucketMs) return;
    if (now - this.currentStart >= this.windowMs + this.bucketMs) {
      // Idle for more than a window: everything has aged out.
      this.closed = 0;
      this.closedSum = 0;
      this.current = 0;
      this.currentStart = now;
      return;
    }
    while (now - this.currentStart >= this.bucketMs) {
      this.push(this.current);
      this.current = 0;
      this.currentStart += this.bucketMs;
    }
  }

  private push(count: number): void {
    if (!this.ring) {
      // Nothing counted yet: the window holds only zeros, so the ring need not exist.
      if (count === 0) {
        this.closed = Math.min(this.closed + 1, BUCKETS);
        return;
      }
      this.ring = new Uint32Array(BUCKETS);
    }
    if (this.closed === BUCKETS) {
      this.closedSum -= this.ring[this.ringStart]!;
      this.ring[this.ringStart] = count;
      this.ringStart = (this.ringStart + 1) % BUCKETS;
    } else {
      this.ring[(this.ringStart + this.closed) % BUCKETS] = count;
      this.closed++;
    }
    this.closedSum += count;
  }
}

/**
 * A fixed window of `maxCalls` per `windowMs` (Supabase's per-channel presence limit:
 * 5 calls per 30 s). The window opens at the first call.
 */
export class WindowLimiter {
  private count = 0;
  private resetAt = -Infinity;

  constructor(
    private readonly maxCalls: number,
    private readonly windowMs: number,
  ) {}

  /** Counts a call; false when it is over the limit. */
  take(now = Date.now()): boolean {
    if (now > this.resetAt) {
      this.count = 1;
      this.resetAt = now + this.windowMs;
      return true;
    }
    if (this.count >= this.maxCalls) return false;
    this.count++;
    return true;
  }
}

/**
 * A token bucket: `burst` tokens to start with, refilled at `rate` per second up to
 * `burst`. Refilled lazily on use, so it needs no timer and costs two numbers; a refused
 * `take` spends nothing, so a client over its limit gets exactly `rate` per second through.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now = Date.now(),
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Spends one token; false (spending nothing) when the bucket is empty. */
  take(now = Date.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True when a `take` now would be refused. */
  empty(now = Date.now()): boolean {
    this.refill(now);
    return this.tokens < 1;
  }

  /** True when the bucket is back to its full burst: its owner may drop it. */
  full(now = Date.now()): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }

  /** "100/s, burst 500", for refusal messages that say which limit was hit. */
  describe(): string {
    return `${this.rate}/s, burst ${this.burst}`;
  }

  private refill(now: number): void {
    if (now <= this.last) return;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
  }
}

export interface IdentityRates {
  joinsPerSecond: number;
  joinBurst: number;
  eventsPerSecond: number;
  eventBurst: number;
}

/** The join and message buckets of one identity (a user, or a client address), shared by all its sockets. */
export interface IdentityBuckets {
  joins: TokenBucket;
  events: TokenBucket;
}

/**
 * Per-identity buckets, created on first use and dropped by the sweep once full again and
 * unused by any connection, so the map holds only identities that are active.
 */
export class IdentityLimits {
  private readonly buckets = new Map<string, IdentityBuckets>();

  constructor(private readonly rates: IdentityRates) {}

  get size(): number {
    return this.buckets.size;
  }

  of(identity: string, now = Date.now()): IdentityBuckets {
    let b = this.buckets.get(identity);
    if (!b) {
      b = { joins: new TokenBucket(this.rates.joinsPerSecond, this.rates.joinBurst, now), events: new TokenBucket(this.rates.eventsPerSecond, this.rates.eventBurst, now) };
      this.buckets.set(identity, b);
    }
    return b;
  }

  /** True when the identity may not join now (read-only: creates nothing). */
  joinsExhausted(identity: string, now = Date.now()): boolean {
    return this.buckets.get(identity)?.joins.empty(now) ?? false;
  }

  /** From the shared sweep: forgets identities whose buckets are full and that hold no connection. */
  sweep(now: number, inUse: (identity: string) => boolean): void {
    for (const [identity, b] of this.buckets) {
      if (b.joins.full(now) && b.events.full(now) && !inUse(identity)) this.buckets.delete(identity);
    }
  }
}
