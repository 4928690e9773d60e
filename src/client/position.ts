// Positions in a topic, as the gateway names them: `<epoch>:<offset>`. The epoch changes
// when a topic is recreated (server restart without a shared bus, history lost), so a
// position from another epoch is never compared by offset. Offsets of retained messages
// are contiguous, which is what lets a subscriber notice a gap by itself.
//
// A cursor is the positions of several topics, comma-joined in the order of the
// request's `topic` parameters. A client may send `start` (from the beginning of the
// topic's history) or `now` (from the current position) for a topic it has no position
// in yet; the server always answers with concrete positions.

export interface Position {
  readonly epoch: string;
  readonly offset: number;
}

/** Where to start reading a topic. */
export type Start = Position | 'start' | 'now';

const POSITION = /^([A-Za-z0-9_-]{1,32}):(\d{1,15})$/;

export function formatPosition(p: Position): string {
  return `${p.epoch}:${p.offset}`;
}

export function formatStart(s: Start): string {
  return typeof s === 'string' ? s : formatPosition(s);
}

export function parsePosition(raw: string): Position | undefined {
  const m = POSITION.exec(raw.trim());
  return m ? { epoch: m[1]!, offset: Number(m[2]) } : undefined;
}

/** Parses a server cursor for `count` topics; undefined when it does not have that shape. */
export function parseCursor(raw: string, count: number): Position[] | undefined {
  const parts = raw.split(',');
  if (parts.length !== count) return undefined;
  const out: Position[] = [];
  for (const part of parts) {
    const p = parsePosition(part);
    if (!p) return undefined;
    out.push(p);
  }
  return out;
}

export function isPosition(s: Start | undefined): s is Position {
  return typeof s === 'object' && s !== null;
}

export function samePosition(a: Position, b: Position): boolean {
  return a.epoch === b.epoch && a.offset === b.offset;
}

/**
 * True when `a` reads from no later than `b`: `start` is earliest, `now` latest, and two
 * positions compare by offset within one epoch. Positions of different epochs are not
 * ordered; the first one wins (the server sorts it out with a `reset`).
 */
export function startsNoLater(a: Start, b: Start): boolean {
  if (a === 'start' || b === 'now') return true;
  if (b === 'start' || a === 'now') return false;
  return a.epoch !== b.epoch || a.offset <= b.offset;
}

/** The earlier of two starts (see `startsNoLater`). */
export function earlierStart(a: Start, b: Start): Start {
  return startsNoLater(a, b) ? a : b;
}
