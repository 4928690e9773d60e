// Readiness: a registry of named checks that `/readyz` evaluates. Any module that owns
// an external dependency (the database change feed, a Redis or NATS bus, ...) registers
// one check under a stable name; the gateway is ready only when every check passes.
//
// A check answers synchronously or asynchronously with `true`, `false`, or a
// `{ ready, detail }` object whose detail tells the operator why. Checks are evaluated
// on each request with a deadline, so a hung dependency reports "not ready" instead of
// hanging the orchestrator's probe.

export type ReadinessAnswer = boolean | { ready: boolean; detail?: string };
export type ReadinessCheck = () => ReadinessAnswer | Promise<ReadinessAnswer>;

export interface ReadinessResult {
  name: string;
  ready: boolean;
  detail?: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: ReadinessResult[];
}

export class ReadinessChecks {
  private readonly checks = new Map<string, ReadinessCheck>();

  constructor(private readonly timeoutMs = 2000) {}

  /**
   * Registers (or replaces) the check called `name`. Replacing is deliberate: the
   * gateway installs placeholder checks (e.g. `bus`) that the module owning the
   * dependency overrides with a real one.
   */
  set(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /** Registers `check` only if no module registered one under `name` (module load order then does not matter). */
  setDefault(name: string, check: ReadinessCheck): void {
    if (!this.checks.has(name)) this.checks.set(name, check);
  }

  delete(name: string): void {
    this.checks.delete(name);
  }

  get names(): string[] {
    return [...this.checks.keys()];
  }

  /** Runs every check concurrently; a check that throws or misses the deadline is not ready. */
  async evaluate(): Promise<ReadinessReport> {
    const results = await Promise.all([...this.checks].map(([name, check]) => this.run(name, check)));
    return { ready: results.every((r) => r.ready), checks: results };
  }

  private async run(name: string, check: ReadinessCheck): Promise<ReadinessResult> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<ReadinessResult>((resolve) => {
      timer = setTimeout(() => resolve({ name, ready: false, detail: `check did not answer within ${this.timeoutMs} ms` }), this.timeoutMs);
    });
    const answered = (async (): Promise<ReadinessResult> => {
      try {
        const answer = await check();
        return typeof answer === 'boolean' ? { name, ready: answer } : { name, ready: answer.ready, ...(answer.detail ? { detail: answer.detail } : {}) };
      } catch (err) {
        return { name, ready: false, detail: `check failed: ${err instanceof Error ? err.message : String(err)}` };
      }
    })();
    try {
      return await Promise.race([answered, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}
