// An incremental Server-Sent Events parser (the WHATWG event-stream format), shared by the
// client library and the load tester: feed it decoded text as it arrives, in chunks of any
// size, and it calls back once per complete event and once per comment line (the gateway's
// `: ping` heartbeat, which EventSource hides but a client needs to see to tell a live
// stream from a stalled one). Lines end in CRLF, LF or CR (a CR at the end of one chunk
// may pair with an LF at the start of the next); one space after the colon is stripped;
// `data` lines are joined with "\n"; a block without data dispatches nothing; an `id`
// containing NUL is ignored; `retry` must be all digits; a leading BOM is dropped.

export interface SseEvent {
  /** `event:` field; `message` when absent. */
  event: string;
  /** `data:` lines joined with `\n`. */
  data: string;
  /** This event's own `id:` field, if it had one (the gateway omits it for unretained messages). */
  id: string | undefined;
  /** The last event id in effect, as EventSource keeps it: it persists across events that carry none. */
  lastEventId: string;
  /** `retry:` in ms, if this event carried one. */
  retry: number | undefined;
}

export interface SseHandlers {
  event(e: SseEvent): void;
  comment?(text: string): void;
  /** A `retry:` field, whether or not its block dispatches an event. */
  retry?(ms: number): void;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  private retry: number | undefined;
  private sawField = false;
  /** WHATWG's "last event ID buffer": set by an `id:` line, committed at the block's end. */
  private idBuffer = '';
  /** WHATWG's "last event ID string": only ids of completed blocks, so a reconnect never skips a half-received event. */
  private lastEventId = '';
  /** At the start of a stream, where a byte order mark is dropped. */
  private atStart = true;
  /** A chunk ended with `\r`: if the next starts with `\n` it is the same line break. */
  private pendingCr = false;

  constructor(private readonly handlers: SseHandlers) {}

  /** The last event id in effect: what a reconnect sends as `Last-Event-ID`. */
  get lastId(): string {
    return this.lastEventId;
  }

  feed(chunk: string): void {
    if (this.atStart && chunk.length > 0) {
      this.atStart = false;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    if (this.pendingCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.pendingCr = false;
    this.buffer += chunk;
    let start = 0;
    for (;;) {
      let end = -1;
      for (let i = start; i < this.buffer.length; i++) {
        const c = this.buffer.charCodeAt(i);
        if (c === 10 || c === 13) {
          end = i;
          break;
        }
      }
      if (end < 0) break;
      const line = this.buffer.slice(start, end);
      if (this.buffer.charCodeAt(end) === 13) {
        if (end + 1 < this.buffer.length) {
          start = this.buffer.charCodeAt(end + 1) === 10 ? end + 2 : end + 1;
        } else {
          start = end + 1;
          this.pendingCr = true;
        }
      } else {
        start = end + 1;
      }
      this.line(line);
    }
    this.buffer = this.buffer.slice(start);
  }

  /** A new connection begins: forgets a partially received event; keeps the last event id. */
  restart(): void {
    this.buffer = '';
    this.pendingCr = false;
    this.atStart = true;
    this.idBuffer = this.lastEventId;
    this.clearBlock();
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.charCodeAt(0) === 58 /* : */) {
      this.handlers.comment?.(line.slice(1).trimStart());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    this.sawField = true;
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.id = this.idBuffer = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) {
          this.retry = Number(value);
          this.handlers.retry?.(this.retry);
        }
        break;
      default:
        break;
    }
  }

  /** A blank line ends a block; as in EventSource, a block without data dispatches nothing. */
  private dispatch(): void {
    this.lastEventId = this.idBuffer;
    const hasData = this.data.length > 0;
    if (!this.sawField || !hasData) {
      this.clearBlock();
      return;
    }
    const e: SseEvent = { event: this.event || 'message', data: this.data.join('\n'), id: this.id, lastEventId: this.lastEventId, retry: this.retry };
    this.clearBlock();
    this.handlers.event(e);
  }

  private clearBlock(): void {
    this.data = [];
    this.event = '';
    this.id = undefined;
    this.retry = undefined;
    this.sawField = false;
  }
}
