// Open-loop schedules. Connections arrive and messages are published at times computed
// in advance, never "after the previous one finished": when the generator is late (its
// event loop stalled, a request queued), the overdue actions still happen and carry
// their INTENDED time, so latency is measured from when the message should have been
// sent. This is what keeps coordinated omission out of the figures.
import { MinHeap } from './min-heap.js';

export type ConnectionPattern = 'burst' | 'gradual' | 'sustained';

/**
 * When each of `n` connections should open, in ms after the start.
 * burst: all at once; gradual and sustained: evenly spread over `rampMs`
 * (sustained then replaces connections as they end — see `churnLifetimeMs`).
 */
export function arrivalOffsets(n: number, pattern: ConnectionPattern, rampMs: number): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = pattern === 'burst' || n <= 1 ? 0 : Math.floor((i * rampMs) / n);
  return out;
}

/**
 * Sustained pattern: each connection lives for a lifetime drawn uniformly from
 * [0.5, 1.5] × `meanMs` and is then replaced by a new one, so the count stays near the
 * target while connections come and go. Deterministic for a given index and round.
 */
export function churnLifetimeMs(meanMs: number, index: number, round: number): number {
  const u = hashUnit(index * 7919 + round * 104729);
  return Math.round(meanMs * (0.5 + u));
}

/** A deterministic pseudo-random number in [0, 1) for an integer seed (mulberry32). */
export function hashUnit(seed: number): number {
  let t = (seed + 0x6d2b79f5) | 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

export interface ScheduledStream {
  /** Anything the caller needs to act on the stream. */
  key: string;
  /** ms between two actions on this stream. */
  intervalMs: number;
  /** Offset of the stream's first action after the start, spreading streams out. */
  phaseMs: number;
}

interface Due {
  stream: ScheduledStream;
  k: number;
}

/** What the scheduler passes to the action: the stream, the action's index on it and its intended time. */
export type ScheduledAction = (stream: ScheduledStream, k: number, intendedTs: number) => void;

/**
 * Runs `action` for every stream at start + phase + k × interval until `endAt`, from one
 * timer for all streams (a min-heap of next due times). Late actions run as soon as the
 * loop gets control, each with its own intended time, and lateness is reported.
 */
export class OpenLoopScheduler {
  private readonly heap = new MinHeap<Due>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    streams: readonly ScheduledStream[],
    private readonly startAt: number,
    private readonly endAt: number,
    private readonly action: ScheduledAction,
    private readonly now: () => number = Date.now,
    /** Told how late (ms) each action ran, for the generator's own health report. */
    private readonly onLateness: (ms: number) => void = () => undefined,
  ) {
    for (const s of streams) if (s.intervalMs > 0) this.heap.push(startAt + s.phaseMs, { stream: s, k: 0 });
  }

  start(): void {
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  get done(): boolean {
    return this.stopped || this.heap.size === 0;
  }

  /** Runs every action due by now; exposed for tests, used by the timer. */
  runDue(): number {
    const now = this.now();
    let ran = 0;
    while (!this.stopped && (this.heap.peekKey() ?? Infinity) <= now) {
      const { key: at, value: due } = this.heap.pop()!;
      if (at >= this.endAt) continue;
      this.onLateness(now - at);
      this.action(due.stream, due.k, at);
      ran++;
      const next = this.startAt + due.stream.phaseMs + (due.k + 1) * due.stream.intervalMs;
      if (next < this.endAt) this.heap.push(next, { stream: due.stream, k: due.k + 1 });
    }
    return ran;
  }

  private arm(): void {
    if (this.stopped) return;
    this.runDue();
    const next = this.heap.peekKey();
    if (next === undefined) return;
    this.timer = setTimeout(() => this.arm(), Math.max(0, next - this.now()));
  }
}
