// A collaborating user driven by the real @supabase/supabase-js client (one client per
// user), for fidelity at small scale: it proves the raw driver's figures match what an
// application built on supabase-js sees. It is heavier (a client, a socket and its timers
// per user), takes receive times in the client's callbacks rather than at socket read,
// counts messages by callback and cannot see bytes (bandwidth is not reported), so use it
// for tens to a few hundred users, and the raw driver for load.
import WebSocket from 'ws';
import type { RealtimeUserPlan, RealtimeWorkerPlan } from '../plan.js';
import type { UptimeLedger } from '../uptime.js';
import type { DriverContext } from './context.js';
import { DocNumbering, docStream, isStamp, markJoinedUser, presenceStream, projectAudience, recordComment, recordStamped, type LoadStamp, type RealtimeDriver } from './realtime-streams.js';
import type { PublishedStreams } from '../plan.js';

const G = 'realtime' as const;

/** The parts of supabase-js this driver uses, typed loosely so the package stays an optional (dev) dependency. */
interface Channel {
  on(type: string, filter: Record<string, unknown>, cb: (payload: never) => void): Channel;
  subscribe(cb: (status: string, err?: Error) => void): Channel;
  track(payload: Record<string, unknown>): Promise<string>;
  send(args: Record<string, unknown>): Promise<string>;
}
interface Client {
  channel(name: string, opts: Record<string, unknown>): Channel;
  removeAllChannels(): Promise<unknown>;
  realtime: { disconnect(): void };
}
export type CreateClient = (url: string, key: string, options: Record<string, unknown>) => Client;

/** Loads supabase-js, with an error that says what to install when it is missing. */
export async function loadSupabaseJs(): Promise<CreateClient> {
  try {
    const mod = (await import('@supabase/supabase-js')) as unknown as { createClient: CreateClient };
    return mod.createClient;
  } catch (err) {
    throw new Error(`--client supabase-js needs @supabase/supabase-js installed (npm install @supabase/supabase-js): ${(err as Error).message}`, { cause: err });
  }
}

export class SupabaseJsUser implements RealtimeDriver {
  private state: 'idle' | 'connecting' | 'joined' | 'closed' = 'idle';
  private client: Client | undefined;
  private channel: Channel | undefined;
  private synced = false;
  private ever = false;
  private presenceSeq = -1;
  private readonly docs: DocNumbering;
  /** The server confirmed the channel's postgres_changes subscription (a `system` message). */
  private commentsLive = false;
  private readonly ledger: UptimeLedger;
  private readonly audience: string;
  private readonly subscriber: string;
  connectingSince = 0;

  constructor(
    private readonly plan: RealtimeUserPlan,
    private readonly opts: RealtimeWorkerPlan & { httpUrl: string },
    private readonly ctx: DriverContext,
    private readonly createClient: CreateClient,
  ) {
    this.audience = projectAudience(plan.project);
    this.subscriber = `j${plan.id}`;
    this.docs = new DocNumbering(docStream(plan.project));
    this.ledger = ctx.recorder.ledger(G);
  }

  get isConnecting(): boolean {
    return this.state === 'connecting';
  }

  get isJoined(): boolean {
    return this.state === 'joined';
  }

  start(): void {
    const rec = this.ctx.recorder;
    this.state = 'connecting';
    this.connectingSince = performance.now();
    rec.count('realtime.connect.attempts');
    const started = performance.now();
    const client = this.createClient(this.opts.httpUrl, this.opts.accessToken, {
      realtime: { transport: WebSocket, heartbeatIntervalMs: this.opts.heartbeatMs },
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    });
    this.client = client;
    let channel = client
      .channel(`project:${this.plan.project}`, { config: { broadcast: { self: false, ack: false }, presence: { key: this.plan.userKey, enabled: this.opts.presence } } })
      .on('presence', { event: 'sync' }, () => {
        this.synced = true;
      })
      .on('presence', { event: 'join' }, (p: { newPresences?: { lt?: unknown }[] }) => {
        const now = this.ctx.now();
        rec.count('realtime.frames');
        for (const meta of p.newPresences ?? []) {
          if (!isStamp(meta.lt)) continue;
          // Members already present at subscribe time arrive as joins before the first sync: a snapshot, not a delivery.
          if (this.synced) recordStamped(this.ctx, this.subscriber, 'realtime.presence', meta.lt, now, this.audience, 0);
          else rec.tracker(this.subscriber, 'realtime.presence', meta.lt.s, false).baseline(meta.lt.seq);
        }
      })
      .on('broadcast', { event: 'doc' }, (p: { payload?: unknown }) => {
        rec.count('realtime.frames');
        if (isStamp(p.payload)) recordStamped(this.ctx, this.subscriber, 'realtime.broadcast', p.payload, this.ctx.now(), this.audience, 1);
      })
      .on('system', {}, (p: { extension?: unknown; status?: unknown }) => {
        if (p.extension !== 'postgres_changes') return;
        this.commentsLive = p.status === 'ok';
        if (!this.commentsLive) rec.rollCall.unmark(this.subscriber, 'realtime.comments');
      });
    if (this.opts.comments) {
      const t = this.opts.commentsTable;
      channel = channel.on('postgres_changes', { event: '*', schema: t.schema, table: t.table, filter: `${t.filterColumn}=eq.${this.plan.project}` }, (p: { new?: { body?: unknown }; commit_timestamp?: unknown }) => {
        rec.count('realtime.frames');
        recordComment(this.ctx, this.subscriber, p.new, p.commit_timestamp, this.ctx.now(), this.audience);
      });
    }
    this.channel = channel.subscribe((status, err) => {
      // Our own close at the end of the run reports CLOSED: not an error.
      if (this.state === 'closed' || this.ctx.stopping) return;
      const now = this.ctx.now();
      if (status === 'SUBSCRIBED') {
        // supabase-js hides the socket: subscribe() → SUBSCRIBED is connect plus join.
        rec.histograms.recordMs('realtime.subscribe', performance.now() - started);
        rec.count('realtime.join.ok');
        if (!this.ever) {
          this.ever = true;
          rec.count('realtime.established');
        }
        this.state = 'joined';
        rec.gauge('realtime.open', 1);
        rec.gauge('realtime.joined', 1);
        rec.audience(this.audience, 1);
        this.ledger.connected(now);
        if (this.opts.presence) this.trackPresence(now);
        return;
      }
      rec.error(G, `supabase_js_${status}${err ? `_${err.message.split(':')[0]!.replace(/\s+/g, '_').slice(0, 40)}` : ''}`);
      if (this.state === 'joined' && !this.ctx.stopping) {
        this.commentsLive = false;
        rec.rollCall.unmark(this.subscriber);
        this.ledger.disconnected(now);
        rec.count('realtime.drops');
        rec.gauge('realtime.open', -1);
        rec.gauge('realtime.joined', -1);
        rec.audience(this.audience, -1);
        this.state = 'connecting';
        // supabase-js rejoins by itself; the next SUBSCRIBED reconnects the ledger.
      }
    });
  }

  close(): void {
    if (this.state === 'closed') return;
    const wasJoined = this.state === 'joined';
    this.state = 'closed';
    this.ledger.end(this.ctx.now());
    if (wasJoined) {
      this.ctx.recorder.gauge('realtime.open', -1);
      this.ctx.recorder.gauge('realtime.joined', -1);
      this.ctx.recorder.audience(this.audience, -1);
    }
    const client = this.client;
    this.client = undefined;
    if (client) void client.removeAllChannels().finally(() => client.realtime.disconnect());
  }

  timeout(): void {
    // supabase-js has its own join timeout and retry schedule; a slow join is counted, not aborted.
    if (this.state === 'connecting') this.ctx.recorder.count('realtime.slow_join');
    this.connectingSince = performance.now();
  }

  heartbeat(): void {
    // The client sends its own heartbeats.
  }

  trackPresence(intendedTs: number): void {
    if (this.state !== 'joined' || !this.channel) {
      this.ctx.recorder.count('realtime.presence.skipped');
      return;
    }
    const seq = this.presenceSeq + 1;
    this.presenceSeq = seq;
    const stamp: LoadStamp = { s: presenceStream(this.plan.project, this.plan.userKey), seq, t: intendedTs };
    this.ctx.recorder.count('realtime.presence.sent');
    void this.channel.track({ u: this.plan.userKey, lt: stamp }).then((r) => {
      if (r !== 'ok') this.ctx.recorder.error(G, `presence_track_${r.replace(/\s+/g, '_')}`);
    });
  }

  sendDoc(intendedTs: number): void {
    if (this.state !== 'joined' || !this.channel) {
      this.ctx.recorder.count('realtime.broadcast.skipped');
      return;
    }
    const stamp = this.docs.next(intendedTs);
    this.ctx.recorder.count('realtime.broadcast.sent');
    void this.channel.send({ type: 'broadcast', event: 'doc', payload: stamp }).then((r) => {
      if (r !== 'ok') {
        this.docs.fail(stamp.seq);
        this.ctx.recorder.error(G, `broadcast_send_${r.replace(/\s+/g, '_')}`);
      }
    });
  }

  /** supabase-js owns its socket: its wire bytes are not reachable, so only message bytes are counted. */
  flushWire(): void {
    // nothing to read
  }

  published(): PublishedStreams {
    const out: PublishedStreams = this.plan.sendsDoc ? this.docs.published() : {};
    if (this.presenceSeq >= 0) out[presenceStream(this.plan.project, this.plan.userKey)] = { last: this.presenceSeq, failed: [] };
    return out;
  }

  answerRollCall(fromFirst: ReadonlySet<string>): number {
    return this.state === 'joined' ? markJoinedUser(this.ctx, this.subscriber, this.plan, this.commentsLive, fromFirst) : 0;
  }

  rollCallClosed(): void {
    this.docs.rollCallClosed();
  }
}
