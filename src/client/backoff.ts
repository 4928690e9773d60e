// Reconnect delays: exponential back-off with jitter, so that thousands of clients cut
// off at the same moment (a deploy, a network blip) do not come back in lock-step.
// "Equal jitter": the delay is uniformly random in [½·d, d] for d = min(max, initial·2^n),
// which keeps a floor (no instant hammering) while spreading the herd.

export interface BackoffOptions {
  /** First delay (ms). */
  initialMs: number;
  /** Cap (ms). */
  maxMs: number;
  /** Random source in [0, 1); injectable for tests. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;

  constructor(private readonly options: BackoffOptions) {}

  get attempts(): number {
    return this.attempt;
  }

  /** The next delay, growing with each call until `reset()`. */
  next(): number {
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    const r = (this.options.random ?? Math.random)();
    return Math.round(ceiling / 2 + (ceiling / 2) * r);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** A delay that `wake()` can cut short; also ends when `signal` aborts. */
export class Wakeup {
  private wakers = new Set<() => void>();

  /** Resolves after `ms` (forever when undefined), or earlier on `wake()`. */
  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      this.wakers.add(done);
      if (ms !== undefined) timer = setTimeout(done, Math.max(0, ms));
    });
  }

  wake(): void {
    for (const w of [...this.wakers]) w();
  }
}
