// The process's own resources, read once per monitor sample: CPU time, RSS, heap,
// open file descriptors against the limit, and event-loop delay over the interval.
import { readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';

export interface ProcessReading {
  cpuSeconds: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Undefined where /proc is not available. */
  openFiles: number | undefined;
  maxOpenFiles: number | undefined;
  /** Event-loop delay since the previous reading, beyond the timer's own period; undefined if the timer never ran. */
  eventLoopLagP99Seconds: number | undefined;
  eventLoopLagMaxSeconds: number | undefined;
}

/** Period of the lag timer: a delay is how much later than this its next run comes. */
const LAG_PERIOD_MS = 10;
/** Delays kept per interval for the percentile (100 per second at the period above); the max is kept regardless. */
const LAG_SAMPLES_LIMIT = 20_000;

/**
 * Event-loop delay: one repeating timer notes how late each run is. Node's
 * monitorEventLoopDelay is not used because its `reset()` forgets the previous
 * timestamp, so a stall that begins just after a reset (for instance, in a sweep task
 * that runs right after the sampler) is never recorded; this meter never forgets.
 */
class LagMeter {
  private last = performance.now();
  private delays: number[] = [];
  private max = 0;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => {
      const now = performance.now();
      const delay = Math.max(0, now - this.last - LAG_PERIOD_MS);
      this.last = now;
      if (this.delays.length < LAG_SAMPLES_LIMIT) this.delays.push(delay);
      if (delay > this.max) this.max = delay;
    }, LAG_PERIOD_MS);
    this.timer.unref();
  }

  /** p99 and max (seconds) of the delays since the previous call; undefined if the timer never ran. */
  take(): { p99: number; max: number } | undefined {
    if (this.delays.length === 0) return undefined;
    const sorted = this.delays.sort((a, b) => a - b);
    const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
    const out = { p99: p99 / 1000, max: this.max / 1000 };
    this.delays = [];
    this.max = 0;
    return out;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export class ProcessStats {
  private readonly lag = new LagMeter();
  private readonly maxOpenFiles = readOpenFileLimit();
  private readonly fdDir = process.platform === 'linux' ? '/proc/self/fd' : undefined;

  async read(): Promise<ProcessReading> {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    const lag = this.lag.take();
    return {
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      openFiles: await this.countOpenFiles(),
      maxOpenFiles: this.maxOpenFiles,
      eventLoopLagP99Seconds: lag?.p99,
      eventLoopLagMaxSeconds: lag?.max,
    };
  }

  stop(): void {
    this.lag.stop();
  }

  /** Async so that 20,000 sockets' worth of directory entries never blocks the loop. */
  private async countOpenFiles(): Promise<number | undefined> {
    if (!this.fdDir) return undefined;
    try {
      // The directory handle readdir itself opens is in the listing; it is not the gateway's.
      return (await readdir(this.fdDir)).length - 1;
    } catch {
      return undefined;
    }
  }
}

/** The soft RLIMIT_NOFILE (Node raises it to the hard limit at start-up), from /proc/self/limits. */
export function readOpenFileLimit(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    const n = Number(soft);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
