// The topic set a connection follows, with a cursor per topic: where the next attempt
// resumes it. A topic's cursor starts as what was asked for (`start`, `now` or a
// position) and becomes the server's position once the server confirms one (a `ready`,
// an event's id, a poll's `lastEventId`, a `reset`). Until then an earlier or later start
// may still replace it; after, the topic keeps its own cursor.

import { formatStart, type Position, type Start } from './position.js';

interface TopicCursor {
  start: Start;
  /** The server has confirmed a position; before that an earlier start may still replace `start`. */
  confirmed: boolean;
}

export class TopicCursors {
  private readonly topics = new Map<string, TopicCursor>();

  get size(): number {
    return this.topics.size;
  }

  has(topic: string): boolean {
    return this.topics.has(topic);
  }

  /** Drops a topic; false if it was not followed. */
  delete(topic: string): boolean {
    return this.topics.delete(topic);
  }

  /** The topics, in the order a request names them, with each one's start. */
  snapshot(): { topics: string[]; starts: Start[] } {
    const topics = [...this.topics.keys()];
    return { topics, starts: topics.map((t) => this.topics.get(t)!.start) };
  }

  /** The topics followed and where each resumes. */
  starts(): ReadonlyMap<string, Start> {
    return new Map([...this.topics].map(([t, c]) => [t, c.start]));
  }

  /** The positions the server has confirmed: everything up to each has been delivered (a checkpoint). */
  confirmedPositions(): Map<string, Position> {
    const out = new Map<string, Position>();
    for (const [topic, c] of this.topics) if (c.confirmed && typeof c.start === 'object') out.set(topic, c.start);
    return out;
  }

  /**
   * Replaces the set; true when anything changed. A new topic starts at the given start,
   * and so does a topic the server has not confirmed a position for yet; a confirmed
   * topic keeps its own cursor (subscriptions behind it catch up by themselves).
   */
  replace(wanted: ReadonlyMap<string, Start>): boolean {
    let changed = false;
    for (const [topic, start] of wanted) {
      const cur = this.topics.get(topic);
      if (!cur) {
        this.topics.set(topic, { start, confirmed: false });
        changed = true;
      } else if (!cur.confirmed && formatStart(cur.start) !== formatStart(start)) {
        // Not connected with it yet: follow the wanted start, earlier or later (a new
        // cross-tab leader replaces the stale positions it knew with fresh ones).
        cur.start = start;
        changed = true;
      }
    }
    for (const topic of this.topics.keys()) {
      if (!wanted.has(topic)) {
        this.topics.delete(topic);
        changed = true;
      }
    }
    return changed;
  }

  /** The server confirmed `position` for a followed topic (ignored once the topic is dropped). */
  confirm(topic: string, position: Position): void {
    const cur = this.topics.get(topic);
    if (!cur) return;
    cur.start = position;
    cur.confirmed = true;
  }

  /**
   * Confirms one position per request topic (a cursor, in request order) and returns those
   * of the topics still followed: the checkpoint to report.
   */
  confirmAll(topics: readonly string[], positions: readonly Position[]): Map<string, Position> {
    const map = new Map<string, Position>();
    topics.forEach((t, i) => {
      if (!this.topics.has(t)) return;
      this.confirm(t, positions[i]!);
      map.set(t, positions[i]!);
    });
    return map;
  }
}
