// The collaboration side of the hybrid architecture: `@supabase/supabase-js` pointed at a
// Fanout gateway (which speaks Supabase Realtime), and a project room built on it with
// the seed's "WebSocket fallback for Supabase issues".
//
//   const supabase = createGatewayClient({ url, anonKey, accessToken: () => session.token });
//   const room = await CollaborationRoom.open({ supabase, url, token, projectId, presence: { key: tabId, meta: { name } } });
//   room.on('presence', render); room.on('comment', addComment); await room.sendComment('Looks good');
//
// Modes:
// - `realtime`: the channel `project:<id>` is joined over the WebSocket: presence, live
//   comments (postgres_changes on `project_comments`, or a `comment` broadcast where the
//   gateway has no comments API), broadcasts.
// - `degraded`: the WebSocket could not join within `degradeAfterMs` (blocked by a proxy,
//   a firewall that kills upgrades, an outage). What still works, over plain HTTP:
//     * comments are posted with `POST /api/projects/:id/comments` as always, and read by
//       polling `GET …/comments` every `pollMs` (new, edited and — within the listed window
//       — deleted comments are reported);
//     * broadcasts are SENT with the REST endpoint (`/realtime/v1/api/broadcast/…`), so
//       everyone still connected receives them; in broadcast-comments mode a comment is
//       sent that way too;
//   and what does not:
//     * presence (no one sees this tab, and it sees no one): `degraded` lists `presence`;
//     * RECEIVING broadcasts (the gateway has no polling endpoint for them): `broadcast`;
//       in broadcast-comments mode that includes other people's comments.
//   supabase-js keeps retrying the WebSocket with its own back-off; once the channel joins
//   again the room returns to `realtime`, re-tracks presence and refetches comments, so a
//   comment made while degraded is not missed.
import { createClient, type RealtimeChannel, type SupabaseClient, type SupabaseClientOptions } from '@supabase/supabase-js';
import { Emitter } from './emitter.js';
import type { FetchLike, TokenSource } from './http.js';

type RealtimeOptions = NonNullable<SupabaseClientOptions<'public'>['realtime']>;

/** A WebSocket class: `WebSocket` from `ws` on Node 20 (supabase-js checks its shape at run time). */
export type WebSocketClass = new (...args: never[]) => unknown;

export interface GatewayClientOptions {
  /** The gateway's URL (the same one a FanoutClient uses). */
  url: string;
  /** The gateway's anon key (`npx fanout keys`). */
  anonKey: string;
  /** The signed-in user's JWT; supabase-js calls it whenever it needs the current one. */
  accessToken?: () => Promise<string | null> | string | null;
  /** Node 20 has no global WebSocket: pass `WebSocket` from `ws`. Browsers and Node 22+ need nothing. */
  transport?: WebSocketClass;
  /** Extra realtime options (heartbeat, reconnect back-off, logger). */
  realtime?: Omit<RealtimeOptions, 'transport'>;
}

/** A supabase-js client whose Realtime (and REST broadcast) goes to the Fanout gateway. */
export function createGatewayClient(options: GatewayClientOptions): SupabaseClient {
  const accessToken = options.accessToken;
  return createClient(options.url.replace(/\/+$/, ''), options.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { ...options.realtime, ...(options.transport ? { transport: options.transport as RealtimeOptions['transport'] } : {}) },
    ...(accessToken ? { accessToken: async () => (await accessToken()) ?? options.anonKey } : {}),
  });
}

export type CollaborationMode = 'connecting' | 'realtime' | 'degraded' | 'closed';

/** What does not work in the current mode. */
export type DegradedFeature = 'presence' | 'broadcast' | 'live-comments';

export interface ProjectComment {
  id: string;
  project_id: string;
  user_id: string;
  body: string;
  created_at?: string;
  updated_at?: string;
  [column: string]: unknown;
}

export interface PresenceMember {
  key: string;
  meta: Record<string, unknown>;
}

export interface RoomEvents {
  mode: { mode: CollaborationMode; degraded: DegradedFeature[] };
  presence: PresenceMember[];
  comment: ProjectComment;
  commentRemoved: { id: string };
  broadcast: { event: string; payload: unknown };
  error: { message: string };
}

export interface RoomOptions {
  supabase: SupabaseClient;
  /** Gateway URL for the comments API. */
  url: string;
  /** The user's JWT for the comments API. */
  token: TokenSource;
  projectId: string;
  /** This member's presence key (one per tab shows every tab) and what others see of it. */
  presence: PresenceMember;
  /** `auto`: the comments API if the gateway has one (`changes` module), else broadcasts. */
  comments?: 'auto' | 'database' | 'broadcast';
  /** Degrade when the channel has not joined within this (ms). */
  degradeAfterMs?: number;
  /** Comment polling period while degraded (ms). */
  pollMs?: number;
  fetch?: FetchLike;
}

const COMMENT_EVENT = 'comment';

export class CollaborationRoom {
  private readonly emitter = new Emitter<RoomEvents>();
  private readonly channel: RealtimeChannel;
  private readonly comments = new Map<string, ProjectComment>();
  private modeValue: CollaborationMode = 'connecting';
  private degradeTimer: ReturnType<typeof setTimeout> | undefined;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private readonly fetcher: FetchLike;
  private readonly degradeAfterMs: number;
  private readonly pollMs: number;

  private constructor(
    private readonly options: RoomOptions,
    /** Where comments live: the gateway's comments API, or broadcasts on the channel. */
    readonly commentsVia: 'database' | 'broadcast',
    initial: ProjectComment[],
  ) {
    const globalFetch = globalThis.fetch;
    this.fetcher = options.fetch ?? ((input, init) => globalFetch(input, init));
    this.degradeAfterMs = options.degradeAfterMs ?? 8000;
    this.pollMs = options.pollMs ?? 3000;
    for (const c of initial) this.comments.set(String(c.id), c);
    const { supabase, projectId, presence } = options;
    this.channel = supabase.channel(`project:${projectId}`, { config: { presence: { key: presence.key, enabled: true }, broadcast: { self: true } } });
    this.channel.on('presence', { event: 'sync' }, () => this.emitter.emit('presence', this.members()));
    if (commentsVia === 'database') {
      this.channel.on('postgres_changes', { event: '*', schema: 'public', table: 'project_comments', filter: `project_id=eq.${projectId}` }, (change) => {
        if (change.eventType === 'DELETE') this.removeComment(String((change.old as { id?: unknown }).id));
        else this.upsertComment(change.new as ProjectComment);
      });
    }
    this.channel.on('broadcast', { event: '*' }, (msg: { event: string; payload?: unknown }) => {
      if (commentsVia === 'broadcast' && msg.event === COMMENT_EVENT) this.upsertComment(msg.payload as ProjectComment);
      else this.emitter.emit('broadcast', { event: msg.event, payload: msg.payload });
    });
    this.channel.subscribe((status, err) => this.onStatus(status, err));
    this.armDegrade();
  }

  /** Opens a project room: finds where comments live, loads them, and joins the channel. */
  static async open(options: RoomOptions): Promise<CollaborationRoom> {
    const mode = options.comments ?? 'auto';
    let initial: ProjectComment[] = [];
    let via: 'database' | 'broadcast' = mode === 'database' ? 'database' : 'broadcast';
    if (mode !== 'broadcast') {
      const listed = await listComments(options.fetch ?? ((i, init) => globalThis.fetch(i, init)), options.url, options.projectId, await options.token());
      if (listed) {
        via = 'database';
        initial = listed;
      } else if (mode === 'database') {
        throw new Error(`the gateway at ${options.url} has no comments API (GET /api/projects/:id/comments); use comments: 'broadcast'`);
      }
    }
    return new CollaborationRoom(options, via, initial);
  }

  get mode(): CollaborationMode {
    return this.modeValue;
  }

  /** What does not work right now (empty in `realtime`). */
  get degraded(): DegradedFeature[] {
    if (this.modeValue !== 'degraded') return [];
    return this.commentsVia === 'broadcast' ? ['presence', 'broadcast', 'live-comments'] : ['presence', 'broadcast'];
  }

  /** Comments known to the room, oldest first. */
  list(): ProjectComment[] {
    return [...this.comments.values()].sort((a, b) => String(a.created_at ?? '').localeCompare(String(b.created_at ?? '')) || Number(a.id) - Number(b.id));
  }

  members(): PresenceMember[] {
    if (this.modeValue === 'degraded') return [];
    const state = this.channel.presenceState<Record<string, unknown>>();
    const out: PresenceMember[] = [];
    for (const [key, metas] of Object.entries(state)) {
      const meta = metas[0];
      if (meta) out.push({ key, meta: { ...meta } });
    }
    return out;
  }

  on<K extends keyof RoomEvents>(event: K, listener: (value: RoomEvents[K]) => void): () => void {
    return this.emitter.on(event, listener);
  }

  /** Posts a comment: through the comments API (any mode), or as a broadcast (REST when degraded). */
  async sendComment(body: string, userId?: string): Promise<ProjectComment> {
    const { projectId } = this.options;
    if (this.commentsVia === 'database') {
      const res = await this.fetcher(`${this.base}/api/projects/${encodeURIComponent(projectId)}/comments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await this.options.token()}`, 'content-type': 'application/json' },
        body: JSON.stringify({ body }),
      });
      if (!res.ok) throw new Error(`posting the comment failed: ${res.status} ${await res.text()}`);
      const row = (await res.json()) as ProjectComment;
      this.upsertComment(row); // the postgres_changes INSERT (or the next poll) repeats it harmlessly
      return row;
    }
    const comment: ProjectComment = { id: `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, project_id: projectId, user_id: userId ?? this.options.presence.key, body, created_at: new Date().toISOString() };
    await this.broadcast(COMMENT_EVENT, comment);
    // Degraded, this room does not hear its own broadcast back.
    if (this.modeValue !== 'realtime') this.upsertComment(comment);
    return comment;
  }

  /** Sends a broadcast: over the WebSocket when joined, else with the REST endpoint. */
  async broadcast(event: string, payload: Record<string, unknown>): Promise<void> {
    if (this.modeValue === 'realtime') {
      const result = await this.channel.send({ type: 'broadcast', event, payload });
      if (result === 'ok') return;
    }
    await this.channel.httpSend(event, payload);
  }

  async close(): Promise<void> {
    this.setMode('closed');
    clearTimeout(this.degradeTimer);
    this.stopPolling();
    await this.options.supabase.removeChannel(this.channel);
    this.emitter.clear();
  }

  // ---- internals ----

  private get base(): string {
    return this.options.url.replace(/\/+$/, '');
  }

  private onStatus(status: string, err: Error | undefined): void {
    if (this.modeValue === 'closed') return;
    if (status === 'SUBSCRIBED') {
      clearTimeout(this.degradeTimer);
      this.degradeTimer = undefined;
      this.stopPolling();
      this.setMode('realtime');
      void this.channel.track(this.options.presence.meta);
      // Anything said while this room was away (or before it joined) is in the list.
      if (this.commentsVia === 'database') void this.refreshComments();
      return;
    }
    if (err) this.emitter.emit('error', { message: `${status}: ${err.message}` });
    // CHANNEL_ERROR / TIMED_OUT / CLOSED: supabase-js retries; degrade if it does not come back in time.
    this.armDegrade();
  }

  private armDegrade(): void {
    if (this.degradeTimer !== undefined || this.modeValue === 'degraded' || this.modeValue === 'closed') return;
    this.degradeTimer = setTimeout(() => {
      this.degradeTimer = undefined;
      if (this.modeValue === 'realtime' && this.channel.state === 'joined') return;
      this.setMode('degraded');
      this.emitter.emit('presence', []);
      if (this.commentsVia === 'database') this.startPolling();
    }, this.degradeAfterMs);
  }

  private setMode(mode: CollaborationMode): void {
    if (this.modeValue === mode) return;
    this.modeValue = mode;
    this.emitter.emit('mode', { mode, degraded: this.degraded });
  }

  private startPolling(): void {
    if (this.pollTimer !== undefined) return;
    void this.refreshComments();
    this.pollTimer = setInterval(() => void this.refreshComments(), this.pollMs);
  }

  private stopPolling(): void {
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  /** Lists the newest comments and reports what changed since the room last knew. */
  private async refreshComments(): Promise<void> {
    let listed: ProjectComment[] | undefined;
    try {
      listed = await listComments(this.fetcher, this.base, this.options.projectId, await this.options.token());
    } catch (err) {
      this.emitter.emit('error', { message: `listing comments failed: ${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    if (!listed || this.modeValue === 'closed') return;
    const seen = new Set<string>();
    for (const c of listed) {
      seen.add(String(c.id));
      this.upsertComment(c);
    }
    // The list is the newest LIST_LIMIT comments: a known comment missing from it was deleted,
    // if the list is complete or the comment is not older than the oldest one listed.
    const complete = listed.length < LIST_LIMIT;
    const oldest = complete ? '' : (listed.map((c) => String(c.created_at ?? '')).sort()[0] ?? '');
    for (const [id, c] of this.comments) {
      if (!seen.has(id) && (complete || String(c.created_at ?? '') >= oldest)) this.removeComment(id);
    }
  }

  private upsertComment(c: ProjectComment): void {
    if (!c || c.id === undefined) return;
    const id = String(c.id);
    const known = this.comments.get(id);
    if (known && known.body === c.body && known.updated_at === c.updated_at) return;
    this.comments.set(id, c);
    this.emitter.emit('comment', c);
  }

  private removeComment(id: string): void {
    if (this.comments.delete(id)) this.emitter.emit('commentRemoved', { id });
  }
}

const LIST_LIMIT = 50;

/** The project's newest comments from the comments API, or undefined when the gateway has none. */
async function listComments(fetcher: FetchLike, url: string, projectId: string, token: string): Promise<ProjectComment[] | undefined> {
  const res = await fetcher(`${url.replace(/\/+$/, '')}/api/projects/${encodeURIComponent(projectId)}/comments?limit=${LIST_LIMIT}`, {
    headers: { authorization: `Bearer ${token}` },
    cache: 'no-store',
  });
  if (!res.ok) {
    await res.body?.cancel();
    return undefined;
  }
  const rows: unknown = await res.json();
  return Array.isArray(rows) ? (rows as ProjectComment[]) : undefined;
}
