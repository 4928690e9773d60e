// The SSE transport: one attempt at `/v1/stream?topic=…&lastEventId=<cursor>`, read until
// it ends, and why it ended. It knows the stream's wire: the `ready` event that says the
// stream is live (and carries a cursor for every topic), `reset`, the gateway's
// `shutdown` (reconnect after its `retry:`), an `error` event (`token_expired` means a
// new key), 204 (every topic finished), and the two silences that mean a dead stream —
// no `ready` within `readyTimeoutMs` (blocked, or buffered by a proxy), and after `ready`
// nothing at all, not even the `: ping` heartbeat, for `idleTimeoutMs`.
//
// It decides nothing about what comes next: retrying, backing off and falling back to
// long-poll are the fallback policy's (fallback-policy.ts).
import { classify, failure, type Attempt, type AttemptRequest, type Outcome, type TransportSink } from './attempt.js';
import { errorMessage, httpError, isAbort, type FetchLike } from './http.js';
import { formatStart, parseCursor, parsePosition, type Position } from './position.js';
import { SseParser, type SseEvent } from './sse-parser.js';
import { parseEventData, toMessage, toResetInfo, topicQuery, withImpliedFields } from './wire.js';

export interface SseTransportOptions {
  /** Gateway base URL (`http://host:port`, or '' for same-origin). */
  url: string;
  fetch: FetchLike;
  readyTimeoutMs: number;
  idleTimeoutMs: number;
}

export class SseTransport {
  private connectCount = 0;
  private openCount = 0;

  constructor(private readonly options: SseTransportOptions) {}

  /** Streams opened (requests sent). */
  get connects(): number {
    return this.connectCount;
  }

  /** Streams that reached `ready`. */
  get opens(): number {
    return this.openCount;
  }

  /** Opens the stream and reads it until the attempt ends (or the server ends it). */
  async stream(request: AttemptRequest, attempt: Attempt, sink: TransportSink): Promise<Outcome> {
    const { topics, starts, token } = request;
    const { readyTimeoutMs, idleTimeoutMs } = this.options;
    const url = `${this.options.url}/v1/stream?${topicQuery(topics)}&lastEventId=${encodeURIComponent(starts.map(formatStart).join(','))}`;
    this.connectCount++;
    const readyTimer = setTimeout(
      () => attempt.end({ kind: 'failed', error: failure('ready_timeout', `no "ready" within ${readyTimeoutMs} ms: the stream is blocked or buffered on the way (a proxy without X-Accel-Buffering support?)`), opened: false }),
      readyTimeoutMs,
    );
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    // Every byte after `ready` (an event or a heartbeat) restarts the idle bound.
    const touch = (): void => {
      if (!attempt.opened) return;
      if (idleTimer !== undefined) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => attempt.end({ kind: 'failed', error: failure('idle_timeout', `nothing received for ${idleTimeoutMs} ms, not even a heartbeat`), opened: true }), idleTimeoutMs);
    };
    let retryHint = 1000;
    const parser = new SseParser({
      event: (e) => {
        if (attempt.outcome) return;
        this.onFrame(e, attempt, topics, retryHint, sink);
        if (attempt.opened) {
          clearTimeout(readyTimer);
          touch();
        }
      },
      retry: (ms) => (retryHint = ms),
    });
    try {
      const res = await this.options.fetch(url, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` }, signal: attempt.controller.signal, cache: 'no-store' });
      if (attempt.outcome) return attempt.outcome;
      if (res.status === 204) {
        await res.body?.cancel();
        return { kind: 'ended', topics: [...topics] };
      }
      if (!res.ok) return classify(await httpError(res, 'the stream'), false, sink);
      if (!res.body) return { kind: 'failed', error: failure('no_body', 'the stream response has no body'), opened: false };
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (attempt.outcome) break;
        if (done) break;
        touch();
        parser.feed(decoder.decode(value, { stream: true }));
        if (attempt.outcome) break;
      }
      if (attempt.outcome) return attempt.outcome;
      return { kind: 'failed', error: failure('stream_ended', 'the server ended the stream without saying why'), opened: attempt.opened };
    } catch (err) {
      if (attempt.outcome) return attempt.outcome;
      if (isAbort(err)) return { kind: 'changed' };
      return { kind: 'failed', error: failure('network', `the stream failed: ${errorMessage(err)}`), opened: attempt.opened };
    } finally {
      clearTimeout(readyTimer);
      if (idleTimer !== undefined) clearTimeout(idleTimer);
      // Cancels the body's reader too, so a stream that ended for a reason of ours is closed at once.
      attempt.controller.abort();
    }
  }

  /** One frame of the stream. */
  private onFrame(e: SseEvent, attempt: Attempt, topics: readonly string[], retryHint: number, sink: TransportSink): void {
    const data = parseEventData(e.data);
    switch (e.event) {
      case 'ready': {
        const positions = e.id === undefined ? undefined : parseCursor(e.id, topics.length);
        if (!positions) return attempt.end({ kind: 'failed', error: failure('bad_ready', `the ready event's id ${JSON.stringify(e.id)} is not a cursor for ${topics.length} topic(s)`), opened: false });
        attempt.opened = true;
        this.openCount++;
        sink.opened(topics, positions);
        return;
      }
      case 'reset': {
        if (!data) return;
        const reset = toResetInfo(data, undefined);
        if (reset) sink.reset(reset);
        return;
      }
      case 'shutdown':
        return attempt.end({ kind: 'shutdown', retryMs: e.retry ?? retryHint });
      case 'error': {
        const code = typeof data?.code === 'string' ? data.code : 'server_error';
        const message = typeof data?.message === 'string' ? data.message : 'the server closed the stream';
        if (code === 'token_expired') return attempt.end({ kind: 'auth', error: failure(code, message) });
        return attempt.end({ kind: 'failed', error: failure(code, message), opened: attempt.opened });
      }
      default: {
        // A single-topic stream does not repeat its topic in every event (its URL names it).
        const full = data && withImpliedFields(data, topics.length === 1 ? topics[0] : undefined);
        if (!full) return;
        // A multiplexed stream's ids are whole cursors; this topic's position is its slot.
        const i = topics.indexOf(full.topic);
        let position: Position | undefined;
        if (e.id !== undefined && i >= 0) position = topics.length === 1 ? parsePosition(e.id) : parseCursor(e.id, topics.length)?.[i];
        sink.message(toMessage(e.event, full, position), position);
      }
    }
  }
}
