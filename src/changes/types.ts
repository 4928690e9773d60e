// The contract between the Realtime channel code (src/realtime) and the database change
// feed (src/changes). A channel that joins with `postgres_changes` bindings subscribes
// here with its subscriber's JWT claims; the feed calls `deliver` once per change per
// channel with the ids of that channel's bindings the change matched.
import type { Claims } from '../core/auth.js';

/** One `postgres_changes` entry from a `phx_join` config, exactly as the client sent it. */
export interface PostgresChangesParams {
  event?: unknown;
  schema?: unknown;
  table?: unknown;
  filter?: unknown;
  select?: unknown;
  [key: string]: unknown;
}

/** The `data` object of a `postgres_changes` frame (reference §5.1). */
export interface ChangeData {
  schema: string;
  table: string;
  type: 'INSERT' | 'UPDATE' | 'DELETE';
  commit_timestamp: string;
  columns?: { name: string; type: string }[];
  record?: Record<string, unknown>;
  old_record?: Record<string, unknown>;
  errors: string[] | null;
}

export interface ChangeSubscriptionRequest {
  /** Subtopic of the channel, e.g. `project:42` (for `system` messages and logs). */
  channel: string;
  /** The bindings with the ids the join reply gave them. */
  bindings: { id: number; params: PostgresChangesParams }[];
  /** The subscriber's JWT claims; rows are filtered by RLS evaluated with them. */
  claims: Claims;
  /** Called once per change per channel, with every matching binding id. Must not throw. */
  deliver(ids: number[], data: ChangeData, commitTs: number): void;
  /** Called when the feed must tell the channel something about capture itself (changes lost), as a `system` message. Must not throw. */
  notify?(message: string): void;
}

export type ChangeSubscriptionResult = { ok: true; subscription: ChangeSubscription } | { ok: false; error: string };

export interface ChangeSubscription {
  /** Re-evaluates RLS with new claims after an `access_token` refresh. */
  updateClaims(claims: Claims): void;
  unsubscribe(): void;
}

export interface ChangeFeed {
  /** Validates the bindings and starts delivering; a validation error is reported as `ok: false` (the join still succeeds). */
  subscribe(request: ChangeSubscriptionRequest): Promise<ChangeSubscriptionResult>;
  /** True once the feed is connected to its database and capturing. */
  readonly ready: boolean;
  /** Opens the database now if it is not open yet (a lazy start); resolves once the feed is capturing, rejects if it cannot. */
  connect(): Promise<void>;
  /** Why the feed is not ready, when it knows (the last failure to open); `/readyz` shows it. */
  readonly error?: Error | undefined;
  close(): Promise<void>;
}

/** What RLS policies on `realtime.messages` allow a user to do on a private channel (reference §2.6). */
export interface ChannelPermissions {
  broadcastRead: boolean;
  presenceRead: boolean;
}

/**
 * Private-channel authorization, evaluated in the database with the user's claims:
 * read permissions at join (and after an `access_token` refresh), write permissions
 * lazily on the first broadcast or track.
 */
export interface ChannelAuthorizer {
  canRead(subtopic: string, claims: Claims, presenceEnabled: boolean): Promise<ChannelPermissions>;
  canWrite(subtopic: string, claims: Claims, extension: 'broadcast' | 'presence'): Promise<boolean>;
}

/** What a `realtime.messages` row sends: its JSON payload or its raw bytes (see message-broadcast.ts). */
export type MessageBody = { kind: 'json'; payload: unknown } | { kind: 'binary'; bytes: Buffer };

/** A broadcast kept in `realtime.messages`, as a replay sends it again. */
export interface StoredBroadcast {
  id: string;
  event: string;
  body: MessageBody;
}

/** The broadcasts stored for private channels, for `config.broadcast.replay`. */
export interface BroadcastArchive {
  /** The newest `limit` (clamped to 1..25) broadcasts of `subtopic` since `since` (ms since the epoch), oldest first. */
  replay(subtopic: string, since: number, limit: number): Promise<StoredBroadcast[]>;
}

/** The database side of the gateway: the `database` service the changes module provides. */
export interface DatabaseServices {
  changeFeed: ChangeFeed;
  authorizer: ChannelAuthorizer;
  archive: BroadcastArchive;
}
