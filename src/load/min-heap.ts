// A binary min-heap keyed by a number (a due time). Used for the open-loop publish
// schedule and for the worker's timed tasks (arrivals, reconnects), so thousands of
// pending actions share one timer instead of holding one each.

export class MinHeap<T> {
  private readonly items: { key: number; value: T }[] = [];

  get size(): number {
    return this.items.length;
  }

  peekKey(): number | undefined {
    return this.items[0]?.key;
  }

  push(key: number, value: T): void {
    const h = this.items;
    h.push({ key, value });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.key <= h[i]!.key) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  pop(): { key: number; value: T } | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.key < h[m]!.key) m = l;
        if (r < h.length && h[r]!.key < h[m]!.key) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }

  clear(): void {
    this.items.length = 0;
  }
}

/**
 * Runs tasks at wall-clock times from one timer. A task whose time has passed runs on
 * the next turn of the event loop; none is dropped.
 */
export class TaskQueue {
  private readonly heap = new MinHeap<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;
  private stopped = false;

  constructor(private readonly now: () => number = Date.now) {}

  at(when: number, task: () => void): void {
    if (this.stopped) return;
    this.heap.push(when, task);
    if (when < this.armedFor) this.arm();
  }

  get pending(): number {
    return this.heap.size;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.heap.clear();
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    const next = this.heap.peekKey();
    if (next === undefined || this.stopped) {
      this.timer = undefined;
      this.armedFor = Infinity;
      return;
    }
    this.armedFor = next;
    this.timer = setTimeout(() => this.run(), Math.max(0, next - this.now()));
  }

  private run(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    while (!this.stopped && (this.heap.peekKey() ?? Infinity) <= now) this.heap.pop()!.value();
    this.arm();
  }
}
