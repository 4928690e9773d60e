// The measured streams of a Realtime load, shared by both user drivers (raw `ws` and
// supabase-js) and the coordinator's comment publisher: the stamp every measured message
// carries, the names of topics, streams and audiences, a user's document numbering, how a
// stamped delivery is recorded, and the driver interface the worker holds.
import type { DriverContext } from './context.js';
import type { PublishedStreams } from '../plan.js';

/** The stamp every measured message carries: stream, sequence number, intended send time. */
export interface LoadStamp {
  s: string;
  seq: number;
  t: number;
  /** Document broadcasts sent after the roll call closed: the first number sent after it (roll-call.ts). */
  o?: number;
}

export function isStamp(v: unknown): v is LoadStamp {
  const o = v as LoadStamp | null;
  return !!o && typeof o === 'object' && typeof o.s === 'string' && typeof o.seq === 'number' && typeof o.t === 'number';
}

/** Comment bodies carry the stamp as text, since they travel through a database column. */
export function commentBody(stamp: LoadStamp): string {
  return `lt:${stamp.s}:${stamp.seq}:${stamp.t}`;
}

export function parseCommentBody(body: unknown): LoadStamp | undefined {
  if (typeof body !== 'string' || !body.startsWith('lt:')) return undefined;
  const last = body.lastIndexOf(':');
  const mid = body.lastIndexOf(':', last - 1);
  if (mid <= 3) return undefined;
  const seq = Number(body.slice(mid + 1, last));
  const t = Number(body.slice(last + 1));
  if (!Number.isFinite(seq) || !Number.isFinite(t)) return undefined;
  return { s: body.slice(3, mid), seq, t };
}

export const projectTopic = (project: string): string => `realtime:project:${project}`;
export const docStream = (project: string): string => `d:${project}`;
export const presenceStream = (project: string, user: string): string => `p:${project}:${user}`;
export const commentStream = (project: string): string => `c:${project}`;
export const projectAudience = (project: string): string => `rt:${project}`;

/**
 * One user's document broadcasts: their numbers (from 1 each run), the sends that failed,
 * and, once the roll call has closed, the first number sent after it — every subscriber
 * marked at the roll call is owed the stream from there, so each stamp carries it.
 */
export class DocNumbering {
  private seq = 0;
  private readonly failed: number[] = [];
  private owedFrom: number | undefined;

  constructor(private readonly stream: string) {}

  /** The stamp of the next broadcast. */
  next(intendedTs: number): LoadStamp {
    const seq = ++this.seq;
    return this.owedFrom === undefined ? { s: this.stream, seq, t: intendedTs } : { s: this.stream, seq, t: intendedTs, o: this.owedFrom };
  }

  /** Broadcast `seq` never left: no subscriber can receive it. */
  fail(seq: number): void {
    this.failed.push(seq);
  }

  rollCallClosed(): void {
    this.owedFrom ??= this.seq + 1;
  }

  /** What this user published, for the receivers' tail-loss accounting (nothing before the first send). */
  published(): PublishedStreams {
    if (this.seq === 0) return {};
    return { [this.stream]: { last: this.seq, failed: [...this.failed], ...(this.owedFrom === undefined ? {} : { owedFrom: this.owedFrom }) } };
  }
}

/** What the worker needs from a collaborating user, whichever client speaks for it. */
export interface RealtimeDriver {
  readonly isConnecting: boolean;
  readonly isJoined: boolean;
  readonly connectingSince: number;
  start(): void;
  close(): void;
  timeout(): void;
  heartbeat(now: number): void;
  trackPresence(intendedTs: number): void;
  sendDoc(intendedTs: number): void;
  published(): PublishedStreams;
  /** Marks this user at the roll call when its channel is live (roll-call.ts); returns 1 when marked. */
  answerRollCall(fromFirst: ReadonlySet<string>): number;
  /** The roll call closed: document broadcasts from now on are owed to every marked subscriber. */
  rollCallClosed(): void;
  /** Adds what the socket read since the last call to `realtime.wire_bytes_in` (a no-op where the socket is not reachable). */
  flushWire(): void;
}

/** Records one stamped delivery: its latency from the intended time, its sequence number and its fan-out. */
export function recordStamped(ctx: DriverContext, subscriber: string, kind: string, stamp: LoadStamp, now: number, audience: string, exclude: number): void {
  const rec = ctx.recorder;
  rec.count(`${kind}.received`);
  rec.histograms.recordMs(kind, now - stamp.t);
  const obs = rec.tracker(subscriber, kind, stamp.s, false, stamp.o).observe(stamp.seq);
  if (obs !== 'duplicate') rec.delivery(stamp.s, stamp.seq, stamp.t, now, audience, exclude);
}

/**
 * The roll call's marks for one joined user: the project's document broadcasts unless it
 * sends them itself (self: false), and its comments once their subscription is confirmed.
 */
export function markJoinedUser(ctx: DriverContext, subscriber: string, plan: { project: string; sendsDoc: boolean }, commentsLive: boolean, fromFirst: ReadonlySet<string>): number {
  const roll = ctx.recorder.rollCall;
  const broadcasts = !plan.sendsDoc;
  const comments = commentsLive && fromFirst.has('realtime.comments');
  if (broadcasts) roll.mark(subscriber, 'realtime.broadcast', docStream(plan.project));
  if (comments) roll.mark(subscriber, 'realtime.comments', commentStream(plan.project), 1);
  return broadcasts || comments ? 1 : 0;
}

/** The comment stamp of a postgres_changes record, and its commit-to-receive latency. */
export function recordComment(ctx: DriverContext, subscriber: string, record: { body?: unknown } | undefined, commitTimestamp: unknown, now: number, audience: string): void {
  const stamp = parseCommentBody(record?.body);
  if (!stamp) {
    ctx.recorder.count('realtime.unstamped');
    return;
  }
  recordStamped(ctx, subscriber, 'realtime.comments', stamp, now, audience, 0);
  const commit = typeof commitTimestamp === 'string' ? Date.parse(commitTimestamp) : NaN;
  if (Number.isFinite(commit)) ctx.recorder.histograms.recordMs('realtime.comments_commit', now - commit);
}
