// An incremental Server-Sent Events parser following the WHATWG event-stream rules:
// lines end in CRLF, LF or CR (a CR at the end of one chunk may pair with an LF at the
// start of the next); `field: value` with one optional space stripped; `data` lines are
// joined with "\n"; an event is dispatched on a blank line only if it has data; `id`
// containing NUL is ignored; `retry` must be all digits; lines starting with ":" are
// comments (heartbeats). Fed decoded text; allocation per event is one object.

export interface SseEvent {
  /** `event:` field, "message" when absent. */
  event: string;
  data: string;
  /** The last event id in effect when this event was dispatched (it persists across events). */
  id: string;
}

export interface SseHandlers {
  onEvent(event: SseEvent): void;
  onComment?(text: string): void;
  onRetry?(ms: number): void;
}

export class SseParser {
  private buffer = '';
  private pendingCR = false;
  private first = true;
  private eventType = '';
  private data: string[] = [];
  private lastEventId = '';

  constructor(private readonly handlers: SseHandlers) {}

  get lastId(): string {
    return this.lastEventId;
  }

  push(text: string): void {
    if (this.first) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let start = 0;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (text.charCodeAt(0) === 10) start = 1;
    }
    const s = this.buffer.length ? this.buffer + text.slice(start) : text.slice(start);
    this.buffer = '';
    let lineStart = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(s.slice(lineStart, i));
      if (c === 13) {
        if (i + 1 === s.length) this.pendingCR = true;
        else if (s.charCodeAt(i + 1) === 10) i++;
      }
      lineStart = i + 1;
    }
    if (lineStart < s.length) this.buffer = s.slice(lineStart);
  }

  /** Forgets a partially received event (the connection dropped); keeps the last event id. */
  reset(): void {
    this.buffer = '';
    this.pendingCR = false;
    this.first = true;
    this.eventType = '';
    this.data = [];
  }

  private line(line: string): void {
    if (line.length === 0) {
      this.dispatch();
      return;
    }
    if (line.charCodeAt(0) === 58) {
      this.handlers.onComment?.(line.slice(1).trimStart());
      return;
    }
    const colon = line.indexOf(':');
    let field: string;
    let value: string;
    if (colon === -1) {
      field = line;
      value = '';
    } else {
      field = line.slice(0, colon);
      value = line.charCodeAt(colon + 1) === 32 ? line.slice(colon + 2) : line.slice(colon + 1);
    }
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.handlers.onRetry?.(Number(value));
        break;
      default:
        break;
    }
  }

  private dispatch(): void {
    if (this.data.length === 0) {
      this.eventType = '';
      return;
    }
    const event: SseEvent = { event: this.eventType || 'message', data: this.data.join('\n'), id: this.lastEventId };
    this.eventType = '';
    this.data = [];
    this.handlers.onEvent(event);
  }
}
