// Clock offset between the generator and the server, estimated NTP-style from publish
// round trips whose response carries the server's publish stamp: a request sent at t1
// and answered at t4 with server time ts gives offset ≈ ts − (t1 + t4) / 2, uncertain by
// ±(t4 − t1) / 2. The sample with the shortest round trip is the best estimate. Latency
// measured from a server stamp includes this offset; since it is constant over a run,
// every percentile can be corrected by subtracting it exactly.

export interface ClockEstimate {
  /** Server clock minus generator clock, ms. */
  offsetMs: number;
  /** Half the shortest round trip: the estimate is within ± this. */
  uncertaintyMs: number;
  samples: number;
}

export class ClockOffsetEstimator {
  private best: { rtt: number; offset: number } | undefined;
  private count = 0;

  sample(sentAt: number, receivedAt: number, serverTs: number): void {
    const rtt = receivedAt - sentAt;
    if (!(rtt >= 0) || !Number.isFinite(serverTs)) return;
    this.count++;
    const offset = serverTs - (sentAt + receivedAt) / 2;
    if (!this.best || rtt < this.best.rtt) this.best = { rtt, offset };
  }

  estimate(): ClockEstimate | null {
    if (!this.best) return null;
    return { offsetMs: Math.round(this.best.offset * 100) / 100, uncertaintyMs: Math.round((this.best.rtt / 2) * 100) / 100, samples: this.count };
  }
}

/**
 * A simulated offset of this machine's wall clock, in ms, for testing clock correction
 * between generator hosts on one machine (FANOUT_SIMULATED_CLOCK_SKEW_MS). Real agents on
 * real machines have real offsets; this only lets a test give a loopback agent one.
 */
const SIMULATED_SKEW_MS = Number(process.env.FANOUT_SIMULATED_CLOCK_SKEW_MS ?? 0) || 0;

/** This host's wall clock (Date.now, plus the simulated skew when one is set). */
export function wallClock(): number {
  return Date.now() + SIMULATED_SKEW_MS;
}

/**
 * Offset of a remote clock from one ping: sent at `sentAt` and answered at `receivedAt`
 * (both local), stamped `remoteNow` by the remote. Same NTP estimate as above, as a value.
 */
export function offsetSample(sentAt: number, receivedAt: number, remoteNow: number): { offsetMs: number; rttMs: number } {
  return { offsetMs: remoteNow - (sentAt + receivedAt) / 2, rttMs: receivedAt - sentAt };
}
