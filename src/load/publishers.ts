// Publishers that run in the coordinator on an open-loop schedule, and the schedules a
// run fires them on: SSE progress events (POST /api/content/:id/progress with the service
// key) and comment inserts (Fanout's comments API or PostgREST). A request is fired at its
// intended time whatever the previous one is doing; its intended time travels in the
// payload, so a slow or queued publish shows up in the end-to-end latency instead of
// silently thinning the load.
import type { HistogramSet } from './histogram.js';
import type { OwedKind, PublishedStreams } from './plan.js';
import type { ClockOffsetEstimator } from './clock.js';
import { OpenLoopScheduler, type ScheduledStream } from './schedule.js';
import { commentInsertRequest, sseTopic } from './target.js';
import { commentBody, commentStream } from './drivers/realtime-streams.js';
import type { RunSpec } from './spec.js';
import type { SseStreams } from './worker-plans.js';

export interface PublishRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface PublisherStats {
  sent: number;
  ok: number;
  failed: number;
  errors: Record<string, number>;
  /** Bytes of the published payloads (request bodies), for the protocol overhead per delivered message. */
  payloadBytes: number;
}

export class HttpPublisher {
  readonly published: PublishedStreams = {};
  readonly stats: PublisherStats = { sent: 0, ok: 0, failed: 0, errors: {}, payloadBytes: 0 };
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    /** `sse` or `comments`: names the histograms and errors. */
    readonly name: string,
    private readonly histograms: HistogramSet,
    /** Extracts the stream's sequence number from a 2xx response body, when the server reports it. */
    private readonly seqFromResponse?: (json: unknown) => number | undefined,
    private readonly timeoutMs = 10_000,
    /** Fed with each response's server stamp (`ts`), when the server returns one. */
    private readonly clock?: ClockOffsetEstimator,
  ) {}

  /**
   * Publishes `seq` on `stream`. With `ownSeq` the publisher assigned the number (in the
   * payload), so a failure marks it as never published; without it, the server numbers
   * the stream and the response (if it says) gives the last number.
   */
  publish(stream: string, seq: number, req: PublishRequest, ownSeq: boolean): void {
    this.stats.sent++;
    this.stats.payloadBytes += Buffer.byteLength(req.body);
    const entry = (this.published[stream] ??= { last: 0, failed: [] });
    if (ownSeq) entry.last = Math.max(entry.last, seq);
    const started = performance.now();
    const sentAt = Date.now();
    const p = fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, signal: AbortSignal.timeout(this.timeoutMs) })
      .then(async (res) => {
        this.histograms.recordMs(`publish.${this.name}`, performance.now() - started);
        const text = await res.text();
        if (!res.ok) return this.fail(entry, seq, ownSeq, `http_${res.status}`);
        const receivedAt = Date.now();
        this.stats.ok++;
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        if (!ownSeq && this.seqFromResponse) {
          const s = this.seqFromResponse(json);
          if (s !== undefined) entry.last = Math.max(entry.last, s);
        }
        const ts = (json as { ts?: unknown } | undefined)?.ts;
        if (this.clock && typeof ts === 'number') this.clock.sample(sentAt, receivedAt, ts);
      })
      .catch((err: unknown) => this.fail(entry, seq, ownSeq, (err as { name?: string }).name === 'TimeoutError' ? 'timeout' : ((err as { cause?: { code?: string } }).cause?.code ?? 'network')))
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private fail(entry: { failed: number[] }, seq: number, ownSeq: boolean, kind: string): void {
    this.stats.failed++;
    this.stats.errors[kind] = (this.stats.errors[kind] ?? 0) + 1;
    if (ownSeq) entry.failed.push(seq);
  }

  /** Waits for requests still in flight (bounded by their own timeouts). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }
}

/** A run's coordinator-side publishers, and the open-loop schedules (not yet started) that fire them. */
export interface RunPublishers {
  publishers: Record<string, HttpPublisher>;
  schedulers: OpenLoopScheduler[];
  /**
   * The kinds these publishers number from 1 on streams this run created: started after the
   * roll call, they owe every marked subscriber each stream from its first message (roll-call.ts).
   */
  fromFirst: OwedKind[];
}

/**
 * The publishers a run needs: progress events on every SSE stream (a Fanout target) and
 * comment inserts on every project (when the Realtime load has a comment rate), scheduled
 * from t0 to endAt; their round trips and lateness go into `histograms`.
 */
export function schedulePublishers(spec: RunSpec, sse: SseStreams | undefined, runId: string, run: { t0: number; endAt: number }, histograms: HistogramSet, clock: ClockOffsetEstimator): RunPublishers {
  const { t0, endAt } = run;
  const lateness = (name: string) => (ms: number) => histograms.recordMs(`publish.${name}.lateness`, ms);
  const schedulers: OpenLoopScheduler[] = [];
  const publishers: Record<string, HttpPublisher> = {};
  const fromFirst: OwedKind[] = [];
  if (spec.sse && sse && spec.sse.ratePerStream > 0 && spec.target.kind === 'fanout') {
    fromFirst.push('sse');
    const pub = (publishers.sse = new HttpPublisher(
      'sse',
      histograms,
      (json) => {
        const o = json as { seq?: unknown; offset?: unknown } | undefined;
        return typeof o?.seq === 'number' ? o.seq : typeof o?.offset === 'number' ? o.offset : undefined;
      },
      10_000,
      clock,
    ));
    const interval = 1000 / spec.sse.ratePerStream;
    // Publishing starts once the connections have arrived, so every subscriber can see every message.
    const streams: ScheduledStream[] = sse.streams.map((s, i) => ({ key: String(i), intervalMs: interval, phaseMs: spec.rampMs + 500 + Math.round((interval * i) / sse.streams.length) }));
    const path = spec.sse.path;
    const key = spec.target.serviceKey ?? '';
    schedulers.push(
      new OpenLoopScheduler(streams, t0, endAt, (stream, k, intended) => {
        const item = sse.streams[Number(stream.key)]!;
        pub.publish(
          sseTopic(path, item.id, item.userId),
          k + 1,
          {
            url: `${spec.target.url}/api/content/${encodeURIComponent(item.id)}/progress`,
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ progress: (k * 7) % 101, stage: 'load', lt: intended, lseq: k + 1 }),
          },
          false,
        );
      }, Date.now, lateness('sse')),
    );
  }
  if (spec.realtime && spec.realtime.commentRate > 0 && spec.target.kind !== 'sse-url') {
    fromFirst.push('realtime.comments');
    const pub = (publishers.comments = new HttpPublisher('comments', histograms));
    const r = spec.realtime;
    const interval = 1000 / r.commentRate;
    const streams: ScheduledStream[] = Array.from({ length: r.projects }, (_, p) => ({ key: `${runId}-p${p}`, intervalMs: interval, phaseMs: spec.rampMs + 1000 + Math.round((interval * p) / r.projects) }));
    schedulers.push(
      new OpenLoopScheduler(streams, t0, endAt, (stream, k, intended) => {
        const seq = k + 1;
        const s = commentStream(stream.key);
        pub.publish(s, seq, commentInsertRequest(spec.target, stream.key, `user-${stream.key}`, commentBody({ s, seq, t: intended })), true);
      }, Date.now, lateness('comments')),
    );
  }
  return { publishers, schedulers, fromFirst };
}
