// The measured streams of a Realtime load, shared by both user drivers (raw `ws` and
// supabase-js) and the coordinator's comment publisher: the stamp every measured message
// carries, the names of topics, streams and audiences, how a stamped delivery is recorded,
// and the driver interface the worker holds.
import type { DriverContext } from './context.js';

/** The stamp every measured message carries: stream, sequence number, intended send time. */
export interface LoadStamp {
  s: string;
  seq: number;
  t: number;
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
  published(): Record<string, { last: number; failed: number[] }>;
  /** Adds what the socket read since the last call to `realtime.wire_bytes_in` (a no-op where the socket is not reachable). */
  flushWire(): void;
}

/** Records one stamped delivery: its latency from the intended time, its sequence number and its fan-out. */
export function recordStamped(ctx: DriverContext, subscriber: string, kind: string, stamp: LoadStamp, now: number, audience: string, exclude: number): void {
  const rec = ctx.recorder;
  rec.count(`${kind}.received`);
  rec.histograms.recordMs(kind, now - stamp.t);
  const obs = rec.tracker(subscriber, kind, stamp.s, false).observe(stamp.seq);
  if (obs !== 'duplicate') rec.delivery(stamp.s, stamp.seq, stamp.t, now, audience, exclude);
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
