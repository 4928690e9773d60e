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
