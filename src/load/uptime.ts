// Connection stability: once a connection has been established, the share of the time
// it stayed connected. Each connection's window runs from its first successful open
// until the test stopped it or closed it on purpose; drops and reconnect gaps inside the
// window are downtime. stability = Σ connected / Σ window over all connections.
// Establishing the connection is measured separately (connect time, connect success %),
// so a slow first connect does not count as instability, and a connection that never
// opened shows up in connect success, not here.

export class UptimeLedger {
  private windowStart: number | undefined;
  private windowEnd: number | undefined;
  private connectedSince: number | undefined;
  private connectedMs = 0;
  private drops = 0;

  connected(at: number): void {
    this.windowStart ??= at;
    if (this.connectedSince === undefined) this.connectedSince = at;
  }

  /** The connection dropped (not a close the test asked for). */
  disconnected(at: number): void {
    if (this.connectedSince === undefined) return;
    this.connectedMs += Math.max(0, at - this.connectedSince);
    this.connectedSince = undefined;
    this.drops++;
  }

  /** The test closed the connection on purpose: the expectation ends here. */
  end(at: number): void {
    if (this.windowEnd !== undefined) return;
    if (this.connectedSince !== undefined) {
      this.connectedMs += Math.max(0, at - this.connectedSince);
      this.connectedSince = undefined;
    }
    this.windowEnd = at;
  }

  get isConnected(): boolean {
    return this.connectedSince !== undefined;
  }

  get unexpectedDrops(): number {
    return this.drops;
  }

  /** Connected and expected milliseconds as of `now` (an open window is measured up to now). */
  totals(now: number): { connectedMs: number; expectedMs: number } {
    if (this.windowStart === undefined) return { connectedMs: 0, expectedMs: 0 };
    const end = this.windowEnd ?? now;
    const live = this.connectedSince !== undefined ? Math.max(0, end - this.connectedSince) : 0;
    return { connectedMs: Math.min(this.connectedMs + live, Math.max(0, end - this.windowStart)), expectedMs: Math.max(0, end - this.windowStart) };
  }
}

/** Stability over many ledgers' totals; 1 when nothing was expected. */
export function stability(totals: Iterable<{ connectedMs: number; expectedMs: number }>): number {
  let c = 0;
  let e = 0;
  for (const t of totals) {
    c += t.connectedMs;
    e += t.expectedMs;
  }
  return e === 0 ? 1 : c / e;
}
