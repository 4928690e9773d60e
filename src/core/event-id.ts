// Event ids: the resumable positions a client sends back as `Last-Event-ID` (or
// `?lastEventId=` / `?after=`).
//
// A position in one topic is `<epoch>:<offset>`: the topic's epoch (changes when the
// topic is recreated, so a stale id is detected instead of trusted) and the offset of the
// last message seen. A stream over one topic uses exactly that as its id, so the whole
// frame of a message, id included, is identical for every subscriber and is built once.
//
// A stream over several topics (/v1/stream?topic=a&topic=b) needs a position per topic,
// and a browser's EventSource reconnects with nothing but the URL and the last id. So
// its id is the list of positions in the URL's topic order, comma-joined:
// `<epochA>:<offsetA>,<epochB>:<offsetB>`. The expensive part of the frame (`event:` and
// the JSON `data:`) is still built once per message and shared; only the short `id:` line
// is written per connection after it. Topic names are not repeated in the id, because the
// reconnect carries the same URL and so the same topic list.
//
// A client that changes its topic set (adds a topic to a live multi-topic stream)
// has a position for the topics it already follows but none for the new one; in a
// cursor it sends (`lastEventId`, `after`), a part may therefore also be the word
// `start` (the beginning of the topic's history) or `now` (from the current position).
// The server only ever sends concrete positions.
import { DomainError } from './errors.js';
import type { Position } from './hub.js';

const POSITION = /^([A-Za-z0-9_-]{1,32}):(\d{1,15})$/;

export function formatPosition(epoch: string, offset: number): string {
  return `${epoch}:${offset}`;
}

export function formatCursor(positions: readonly Position[]): string {
  let out = '';
  for (let i = 0; i < positions.length; i++) out += (i ? ',' : '') + positions[i]!.epoch + ':' + positions[i]!.offset;
  return out;
}

/** A malformed event id or cursor; the message names where it came from (`source`) and what was wrong. */
export class InvalidEventIdError extends DomainError {
  constructor(
    readonly source: string,
    readonly raw: string,
    problem: string,
  ) {
    super('invalid', 'invalid_last_event_id', `${source} ${JSON.stringify(raw.slice(0, 200))} ${problem}`);
  }
}

/**
 * Parses an event id for a stream over `topicCount` topics. Throws InvalidEventIdError
 * naming the problem for anything malformed, so a broken client learns why instead of
 * being reset.
 */
export function parseEventId(raw: string, topicCount: number, source: string): Position[] {
  const parts = raw.split(',');
  if (parts.length !== topicCount) {
    throw new InvalidEventIdError(
      source,
      raw,
      `names ${parts.length} position(s) but the stream has ${topicCount} topic(s); expected ${topicCount === 1 ? '"<epoch>:<offset>"' : 'comma-separated "<epoch>:<offset>" in the order of the topic parameters'}`,
    );
  }
  return parts.map((part) => {
    const m = POSITION.exec(part.trim());
    if (!m) throw new InvalidEventIdError(source, raw, 'is not a valid event id (expected "<epoch>:<offset>")');
    return { epoch: m[1]!, offset: Number(m[2]) };
  });
}

/** A cursor part as a client may send it: a position, or where to start a topic it has no position for. */
export type CursorStart = Position | 'start' | 'now';

/**
 * Parses a client cursor over `topicCount` topics whose parts may also be `start` or
 * `now` (see the header comment). Throws the same errors as `parseEventId`.
 */
export function parseCursor(raw: string, topicCount: number, source: string): CursorStart[] {
  const parts = raw.split(',');
  const tokens = parts.map((part) => part.trim());
  if (parts.length === topicCount && tokens.every((t) => t === 'start' || t === 'now' || POSITION.test(t))) {
    return tokens.map((t) => (t === 'start' || t === 'now' ? t : parseEventId(t, 1, source)[0]!));
  }
  return parseEventId(raw, topicCount, source);
}
