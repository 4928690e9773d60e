// Loss, duplicate and reorder detection for one subscriber of one stream, from the
// per-stream sequence numbers every message carries. Counted, never guessed:
//   seq == highest + 1            in order
//   seq >  highest + 1            gap: the skipped numbers are remembered as missing
//   seq <  highest, was missing   reordered (arrived late); no longer missing
//   seq <= highest, not missing   duplicate
// A skipped number that never arrives is lost. Only the last `window` missing numbers
// are remembered individually (a bounded set, as market-data gap detectors do); older
// ones are counted as lost at once, so memory stays bounded on a long soak.

export interface SequenceCounts {
  /** Messages observed, including duplicates. */
  received: number;
  /** Distinct sequence numbers observed. */
  unique: number;
  duplicates: number;
  /** Messages that arrived after a higher sequence number had already arrived. */
  reordered: number;
  /** Sequence numbers that never arrived while the subscriber was connected. */
  lost: number;
  /** Numbers skipped across a disconnect on a transport without resume (not a delivery failure of a live connection). */
  missedWhileDisconnected: number;
}

export type Observation = 'first' | 'in-order' | 'gap' | 'reordered' | 'duplicate';

export function emptyCounts(): SequenceCounts {
  return { received: 0, unique: 0, duplicates: 0, reordered: 0, lost: 0, missedWhileDisconnected: 0 };
}

export function addCounts(into: SequenceCounts, from: SequenceCounts): SequenceCounts {
  into.received += from.received;
  into.unique += from.unique;
  into.duplicates += from.duplicates;
  into.reordered += from.reordered;
  into.lost += from.lost;
  into.missedWhileDisconnected += from.missedWhileDisconnected;
  return into;
}

export class SequenceTracker {
  private highest: number | undefined;
  private readonly missing = new Set<number>();
  private overflowLost = 0;
  private disconnected = false;
  private ended = false;
  private readonly counts = emptyCounts();

  /**
   * @param expectedFirst when known (the subscriber was live before the first publish), numbers
   *   before the first one received count as lost; otherwise the first one received is the baseline.
   * @param resumable true when the transport replays what was missed across a reconnect (SSE with
   *   Last-Event-ID): a gap after a reconnect is then a real loss, not an expected miss.
   */
  constructor(
    expectedFirst?: number,
    private readonly resumable = false,
    private readonly window = 4096,
  ) {
    if (expectedFirst !== undefined) this.highest = expectedFirst - 1;
  }

  observe(seq: number): Observation {
    this.counts.received++;
    if (this.highest === undefined) {
      this.highest = seq;
      this.counts.unique++;
      this.disconnected = false;
      return 'first';
    }
    if (seq > this.highest) {
      const inOrder = seq === this.highest + 1;
      if (inOrder) this.highest = seq;
      else this.skipTo(seq);
      this.disconnected = false;
      this.counts.unique++;
      return inOrder ? 'in-order' : 'gap';
    }
    if (this.missing.delete(seq)) {
      this.counts.unique++;
      this.counts.reordered++;
      return 'reordered';
    }
    this.counts.duplicates++;
    return 'duplicate';
  }

  /**
   * Sets the starting point without counting a delivery: a snapshot (a presence_state)
   * says where the stream stood when this subscriber joined.
   */
  baseline(seq: number): void {
    if (this.highest === undefined) {
      this.highest = seq;
      return;
    }
    if (seq <= this.highest) return;
    this.skipTo(seq);
    this.disconnected = false;
  }

  /** The subscriber left on purpose (churn): nothing published afterwards was due to it. */
  end(): void {
    this.ended = true;
  }

  /** The connection dropped; what is skipped until the next message may be an expected miss. */
  markDisconnected(): void {
    this.disconnected = true;
  }

  get highestSeen(): number | undefined {
    return this.highest;
  }

  /**
   * Final counts. `lastPublished` is the publisher's last sequence number for this stream;
   * when given (and the subscriber is still connected), numbers after the highest one
   * received are tail losses that no later message could reveal. `notPublished` lists
   * numbers the publisher assigned but failed to send (a rejected insert, say): a
   * subscriber cannot receive those, so they are not counted as lost.
   */
  finish(lastPublished?: number, notPublished: Iterable<number> = []): SequenceCounts {
    const out = { ...this.counts };
    const excluded = new Set(notPublished);
    let tail = 0;
    if (!this.ended && lastPublished !== undefined && this.highest !== undefined && lastPublished > this.highest) {
      tail = lastPublished - this.highest;
      for (const s of excluded) if (s > this.highest && s <= lastPublished) tail--;
    }
    if (this.disconnected && !this.resumable) out.missedWhileDisconnected += tail;
    else out.lost += tail;
    let missing = this.missing.size;
    for (const s of excluded) if (this.missing.has(s)) missing--;
    out.lost += missing + this.overflowLost;
    return out;
  }

  /** Moves the highest number to `seq`, accounting for the numbers skipped on the way. */
  private skipTo(seq: number): void {
    const from = this.highest! + 1;
    if (this.disconnected && !this.resumable) this.counts.missedWhileDisconnected += seq - from;
    else this.remember(from, seq - 1);
    this.highest = seq;
  }

  private remember(from: number, to: number): void {
    // A huge gap would flood the set: count the part that cannot fit in the window as lost now.
    const fit = Math.max(from, to - this.window + 1);
    this.overflowLost += fit - from;
    for (let s = fit; s <= to; s++) this.missing.add(s);
    while (this.missing.size > this.window) {
      const oldest = this.missing.values().next().value as number;
      this.missing.delete(oldest);
      this.overflowLost++;
    }
  }
}
