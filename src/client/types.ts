// The public types of the Fanout client: what an app receives and configures.
import type { Position } from './position.js';

/**
 * The connection's state, as the app sees it:
 * - `idle`: nothing subscribed, so no connection is held;
 * - `connecting`: opening the first stream;
 * - `open`: the stream is live (the server's `ready` arrived);
 * - `reconnecting`: the stream dropped (or the topic set changed) and is being reopened;
 * - `polling`: SSE failed or is buffered by a proxy, so events arrive by long-poll;
 * - `closed`: `close()` was called (or, for one subscription, it ended).
 */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed';

/** The JSON `data` of a gateway event: published fields plus the server's `topic`, `seq` and `ts`. */
export interface MessageData {
  readonly topic: string;
  /** Per-topic offset (0 for messages that are not retained). */
  readonly seq: number;
  /** Server publish time, ms since the Unix epoch. */
  readonly ts: number;
  readonly [field: string]: unknown;
}

/** A content-generation progress event's data (`progress`, `complete`, `failed`). */
export interface ProgressData extends MessageData {
  readonly contentId?: string;
  readonly progress?: number;
  readonly stage?: string;
  readonly error?: string;
}

/** One event as delivered to the app. */
export interface FanoutMessage<T extends MessageData = MessageData> {
  readonly topic: string;
  /** Event name: `progress`, `complete`, `failed`, or whatever the publisher used. */
  readonly event: string;
  /** The event's position in its topic (`<epoch>:<offset>`), or '' for a message that is not retained. */
  readonly id: string;
  readonly seq: number;
  readonly ts: number;
  readonly data: T;
}

/**
 * The server could not replay what this subscriber missed (history expired, the topic
 * was recreated, or the position is ahead of the server): refetch state. `state` is the
 * topic's current state when the server knows it (a content item's status and progress).
 */
export interface ResetInfo {
  readonly topic: string;
  readonly reason: 'expired' | 'epoch' | 'ahead' | (string & {});
  readonly message: string;
  /** Where the subscription continues from. */
  readonly position: Position;
  readonly state: unknown;
}

/** A failure the app may want to show or log. `fatal`: the subscription ended because of it. */
export interface FanoutErrorInfo {
  readonly code: string;
  readonly message: string;
  readonly status?: number;
  readonly topic?: string;
  readonly fatal: boolean;
}

/** Where a new subscription starts reading a topic. */
export type From = 'start' | 'now' | string;

export interface ConnectionStats {
  /** `sse` or `poll` when this client holds the connection, `shared` when another tab does. */
  transport: 'sse' | 'poll' | 'shared' | 'none';
  /** Cross-tab role: `leader` holds the connection for every tab, `follower` gets events from it. */
  role: 'single' | 'leader' | 'follower';
  /** Streams opened (including reconnects) by this tab. */
  connects: number;
  /** Streams that reached `ready`. */
  opens: number;
  /** Long-poll requests made (fallback and catch-up). */
  polls: number;
  /** Times the connection fell back from SSE to long-poll, and came back. */
  fallbacks: number;
  restores: number;
  /** Events delivered to subscriptions / dropped as already seen. */
  messages: number;
  duplicates: number;
  resets: number;
  /** Gaps a subscription filled by itself (after joining late, a hand-over or a reset elsewhere). */
  catchUps: number;
  topics: number;
  subscriptions: number;
}
