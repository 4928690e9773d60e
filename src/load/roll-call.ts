// The roll call: which subscribers were there before a stream's first owed message, so a
// loss of a stream's first messages (or of all of them) counts. Without it the first
// message a subscriber receives is its baseline, and a gateway that lost seq 1..k to a
// subscriber that was live all along would go unnoticed.
//
// The rule is decided by the order of messages, never by comparing clocks across processes:
//   1. Shortly after the ramp the coordinator asks every worker "who is here?" ('roll-call').
//      Each worker marks the subscribers that are live at that moment — SSE: its `ready`
//      event arrived; Realtime: the join reply was ok (for comments also "Subscribed to
//      PostgreSQL") — and answers ('present').
//   2. Only once every worker has answered does the coordinator start its own publishers
//      (SSE progress, comment inserts: streams this run created, numbered from 1), and tell
//      the workers the roll call is closed ('roll-call-closed'): from then on a Realtime
//      user stamps its document broadcasts with `o`, the first number it sent after the
//      close. Every message numbered from there on was published after every mark.
//   3. A marked subscriber that stays connected is owed every message of its streams from
//      that number on: a tracker it opens later starts there (`expectedFirst`), and a
//      stream it never heard from at all counts as lost through the publisher's last
//      number. A drop, a churn or a failed subscription unmarks it (it keeps the baseline
//      rule from then on), and so does joining after the roll call.
// Presence keeps its snapshot baseline (a presence_state says where each stream stood).
import type { WorkerPool } from './pool.js';
import type { OwedKind } from './plan.js';

/** How long after the ramp the roll call is taken: every planned arrival is due, and the first publish (ramp + 500 ms) is still ahead. */
export const ROLL_CALL_AFTER_RAMP_MS = 300;

/** One stream a marked subscriber is owed, from `owedFrom` (unknown until the publisher says, for document broadcasts). */
export interface OwedStream {
  subscriber: string;
  kind: OwedKind;
  stream: string;
  owedFrom: number | undefined;
}

/** A worker's record of who answered the roll call and is still owed. */
export class RollCallRegister {
  private readonly marked = new Map<string, OwedStream[]>();

  /** `subscriber` was live at the roll call and is meant to receive `stream`. */
  mark(subscriber: string, kind: OwedKind, stream: string, owedFrom?: number): void {
    let list = this.marked.get(subscriber);
    if (!list) this.marked.set(subscriber, (list = []));
    list.push({ subscriber, kind, stream, owedFrom });
  }

  /** Dropped, left or lost its subscription (of one kind): owed nothing it did not already start receiving. */
  unmark(subscriber: string, kind?: OwedKind): void {
    const list = this.marked.get(subscriber);
    if (!list) return;
    const kept = kind === undefined ? [] : list.filter((e) => e.kind !== kind);
    if (kept.length) this.marked.set(subscriber, kept);
    else this.marked.delete(subscriber);
  }

  /** Subscribers marked and still owed. */
  get size(): number {
    return this.marked.size;
  }

  /**
   * Where a new tracker of (subscriber, kind) starts: the owed number when the subscriber is
   * still marked for that kind (`stamped` is the number a document broadcast carries), else
   * undefined (the first message received is the baseline).
   */
  expectedFirst(subscriber: string, kind: string, stamped?: number): number | undefined {
    const entry = this.marked.get(subscriber)?.find((e) => e.kind === kind);
    return entry ? (entry.owedFrom ?? stamped) : undefined;
  }

  /** Every stream still owed to a marked subscriber. */
  *owed(): IterableIterator<OwedStream> {
    for (const list of this.marked.values()) yield* list;
  }
}

/** When the coordinator takes the roll call, and what stops it from being taken. */
export interface RollCallTiming {
  /** Wall-clock time to take it. */
  at: number;
  /** The run's end: a roll call due at or after it is not taken. */
  endAt: number;
  /** Publishing stopped (the run ended or failed) before the roll call's time. */
  stopped: AbortSignal;
  /** The run is being aborted. */
  aborting: Promise<void>;
  /** How long every worker has to answer. */
  timeoutMs: number;
}

/**
 * At `timing.at`, takes the roll call across the pool and closes it: resolves to how many
 * subscribers answered, or undefined when the run stopped first. `fromFirst` names the
 * kinds the coordinator publishes from their first number once this resolves. Rejects when
 * a worker does not answer within `timing.timeoutMs`.
 */
export async function rollCallAt(pool: WorkerPool, fromFirst: OwedKind[], timing: RollCallTiming): Promise<number | undefined> {
  if (timing.at >= timing.endAt) return undefined;
  const due = await Promise.race([sleepUntil(timing.at, timing.stopped).then(() => !timing.stopped.aborted), timing.aborting.then(() => false)]);
  if (!due) return undefined;
  const answers = pool.collect('present', timing.timeoutMs);
  pool.broadcast({ type: 'roll-call', fromFirst });
  const present = (await answers).reduce((n, a) => n + a.subscribers, 0);
  pool.broadcast({ type: 'roll-call-closed' });
  return present;
}

/** Resolves at `at` (wall clock), or as soon as `signal` aborts. */
function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, at - Date.now()));
    signal.addEventListener('abort', done, { once: true });
    if (signal.aborted) done();
  });
}
