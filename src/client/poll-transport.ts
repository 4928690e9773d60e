// The long-poll transport: one `/v1/poll?topic=…&after=<cursor>&wait=<s>` request and
// its answer — the events since the cursor (or, after waiting up to `wait` seconds, none)
// and `lastEventId`, the cursor everything up to which has been sent. It carries the same
// events, ids and resets as the stream, which is why switching between the two loses
// nothing. When to poll, and for how long, is the fallback policy's (fallback-policy.ts).
import { classify, failure, type Attempt, type AttemptRequest, type Outcome, type TransportSink } from './attempt.js';
import { errorMessage, httpError, isAbort, type FetchLike } from './http.js';
import { formatStart, parseCursor, parsePosition } from './position.js';
import { isPollAnswer, pollUrl, toMessage, toResetInfo, withImpliedFields, type PollAnswer } from './wire.js';

export interface PollTransportOptions {
  /** Gateway base URL (`http://host:port`, or '' for same-origin). */
  url: string;
  fetch: FetchLike;
}

/** A poll also waits for the server: beyond its `wait`, this much longer means the answer is lost on the way. */
const ANSWER_GRACE_S = 15;

export class PollTransport {
  private pollCount = 0;

  constructor(private readonly options: PollTransportOptions) {}

  /** Long-poll requests sent. */
  get polls(): number {
    return this.pollCount;
  }

  /** One poll that waits up to `waitS` seconds for events. */
  async poll(request: AttemptRequest & { waitS: number }, attempt: Attempt, sink: TransportSink): Promise<Outcome> {
    const { topics, starts, token, waitS } = request;
    const url = pollUrl(this.options.url, topics, starts.map(formatStart).join(','), waitS);
    const boundS = waitS + ANSWER_GRACE_S;
    const timeout = setTimeout(() => attempt.end({ kind: 'failed', error: failure('poll_timeout', `the long-poll did not answer within ${boundS} s`), opened: false }), boundS * 1000);
    this.pollCount++;
    try {
      const res = await this.options.fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: attempt.controller.signal, cache: 'no-store' });
      if (attempt.outcome) return attempt.outcome;
      if (!res.ok) return classify(await httpError(res, 'the long-poll'), false, sink);
      const body: unknown = await res.json();
      if (attempt.outcome) return attempt.outcome;
      if (!isPollAnswer(body)) return { kind: 'failed', error: failure('bad_answer', "the long-poll answer is not the gateway's shape"), opened: false };
      this.deliver(body, topics, sink);
      return { kind: 'polled' };
    } catch (err) {
      if (attempt.outcome) return attempt.outcome;
      if (isAbort(err)) return { kind: 'changed' };
      return { kind: 'failed', error: failure('network', `the long-poll failed: ${errorMessage(err)}`), opened: false };
    } finally {
      clearTimeout(timeout);
    }
  }

  private deliver(body: PollAnswer, topics: readonly string[], sink: TransportSink): void {
    for (const ev of body.events) {
      const data = ev.data && withImpliedFields(ev.data, undefined);
      if (!data) continue;
      const position = parsePosition(ev.id);
      if (ev.event === 'reset') {
        const reset = toResetInfo(data, position);
        if (reset) sink.reset(reset);
        continue;
      }
      sink.message(toMessage(ev.event, data, position), position);
    }
    const positions = parseCursor(body.lastEventId, topics.length);
    if (positions) sink.checkpoint(topics, positions);
  }
}
