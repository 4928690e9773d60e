// The process's own resources, read once per monitor sample: CPU time, RSS, heap,
// open file descriptors against the limit, and event-loop delay over the interval.
import { readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

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

/** Delay-timer period. The histogram records each timer period, so idle reads ≈ this; it is subtracted. */
const LAG_RESOLUTION_MS = 10;

export class ProcessStats {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  private readonly maxOpenFiles = readOpenFileLimit();
  private readonly fdDir = process.platform === 'linux' ? '/proc/self/fd' : undefined;

  constructor() {
    this.delay.enable();
  }

  async read(): Promise<ProcessReading> {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    const lag = this.readLag();
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
    this.delay.disable();
  }

  private readLag(): { p99: number; max: number } | undefined {
    if (this.delay.count === 0) return undefined;
    const beyond = (ns: number): number => Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS) / 1000;
    const out = { p99: beyond(this.delay.percentile(99)), max: beyond(this.delay.max) };
    this.delay.reset();
    return out;
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
