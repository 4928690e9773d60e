// A topic's bounded history in the hub: a ring buffer of its most recent messages, grown
// on demand up to `--history-size`, trimmed by age, read from an offset for resume.
import type { HubMessage } from './hub.js';

/** Fixed-capacity FIFO of the most recent messages of one topic. */
export class History {
  private items: (HubMessage | undefined)[];
  private head = 0; // index of the oldest item
  private count = 0;

  constructor(private readonly capacity: number) {
    this.items = new Array<HubMessage | undefined>(Math.min(capacity, 16));
  }

  get size(): number {
    return this.count;
  }

  push(msg: HubMessage): void {
    if (this.capacity === 0) return;
    if (this.count === this.items.length && this.count < this.capacity) this.grow();
    if (this.count === this.capacity) {
      this.items[this.head] = msg;
      this.head = (this.head + 1) % this.items.length;
      return;
    }
    this.items[(this.head + this.count) % this.items.length] = msg;
    this.count++;
  }

  oldest(): HubMessage | undefined {
    return this.count ? this.items[this.head] : undefined;
  }

  clear(): void {
    this.items = new Array<HubMessage | undefined>(Math.min(this.capacity, 16));
    this.head = 0;
    this.count = 0;
  }

  /** Drops messages published before `cutoffTs`. */
  trimOlderThan(cutoffTs: number): void {
    while (this.count && this.items[this.head]!.ts < cutoffTs) {
      this.items[this.head] = undefined;
      this.head = (this.head + 1) % this.items.length;
      this.count--;
    }
  }

  /** Messages with offset greater than `offset`, oldest first. */
  after(offset: number, limit = Infinity): HubMessage[] {
    const out: HubMessage[] = [];
    const first = this.oldest();
    if (!first) return out;
    // Offsets in history are contiguous, so the start index is computed, not searched.
    const skip = Math.max(0, offset - first.offset + 1);
    for (let i = skip; i < this.count && out.length < limit; i++) out.push(this.items[(this.head + i) % this.items.length]!);
    return out;
  }

  private grow(): void {
    const next = new Array<HubMessage | undefined>(Math.min(this.capacity, this.items.length * 2));
    for (let i = 0; i < this.count; i++) next[i] = this.items[(this.head + i) % this.items.length];
    this.items = next;
    this.head = 0;
  }
}
