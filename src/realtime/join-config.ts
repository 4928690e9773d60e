// The `phx_join` payload as the real server reads it (reference §2.2): booleans also
// accept "true"/"false" strings, unknown keys are ignored, an invalid part falls back to
// its default instead of failing the join, `postgres_changes` entries are kept exactly as
// sent, and an empty presence key becomes a server-generated id.
import { createHash, randomUUID } from 'node:crypto';
import type { PostgresChangesParams } from '../changes/types.js';

export interface JoinConfig {
  ack: boolean;
  self: boolean;
  presenceEnabled: boolean;
  presenceKey: string;
  isPrivate: boolean;
  /** `config.broadcast.replication_ready`: tell the client, with a `system` message, once the change feed is capturing. */
  replicationReady: boolean;
  /** Present only when the client asked for replay (`config.broadcast.replay`). */
  replay: unknown;
  postgresChanges: PostgresChangesParams[];
  /**
   * `postgres_changes_options.wait`: hold the join reply until the change feed confirmed
   * the subscription, for at most this many ms (the client's timeout, clamped to 20 s).
   */
  waitForChangesMs: number | undefined;
  /** `access_token` (or legacy `user_token`) from the payload, if any. */
  accessToken: string | undefined;
}

/** Supabase's defaults for a `broadcast.replay` object without `since` or `limit`. */
const REPLAY_DEFAULTS = { since: 0, limit: 10 };

/**
 * What a private channel's `broadcast.replay` asks for: undefined when it is not an object
 * (the join goes on without replay, as on Supabase), `invalid` when `since` or `limit` is
 * not an integer (the join is refused).
 */
export function replayRequest(replay: unknown): { since: number; limit: number } | 'invalid' | undefined {
  if (!isObject(replay)) return undefined;
  const since = replay.since ?? REPLAY_DEFAULTS.since;
  const limit = replay.limit ?? REPLAY_DEFAULTS.limit;
  if (!Number.isSafeInteger(since) || !Number.isSafeInteger(limit)) return 'invalid';
  return { since: since as number, limit: limit as number };
}

/** realtime-js's default `postgres_changes_options.timeout`, and the most the server waits. */
const DEFAULT_CHANGES_WAIT_MS = 15_000;
const MAX_CHANGES_WAIT_MS = 20_000;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Supabase's FlexibleBoolean: true/false, or the strings "true"/"false" in any case. */
export function flexibleBoolean(value: unknown, fallback: boolean): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const v = value.toLowerCase();
    if (v === 'true') return true;
    if (v === 'false') return false;
  }
  return fallback;
}

function presenceKeyOf(value: unknown): string {
  if (typeof value === 'string') return value || randomUUID();
  if (value === null || value === undefined) return randomUUID();
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

export function parseJoinPayload(payload: Record<string, unknown>): JoinConfig {
  const config = isObject(payload.config) ? payload.config : {};
  const broadcast = isObject(config.broadcast) ? config.broadcast : {};
  const presence = isObject(config.presence) ? config.presence : {};
  const changes = Array.isArray(config.postgres_changes) ? config.postgres_changes : [];
  const token = payload.access_token ?? payload.user_token;
  const options = isObject(config.postgres_changes_options) ? config.postgres_changes_options : {};
  const waitMs = typeof options.timeout === 'number' && options.timeout > 0 ? options.timeout : DEFAULT_CHANGES_WAIT_MS;
  return {
    ack: flexibleBoolean(broadcast.ack, false),
    self: flexibleBoolean(broadcast.self, false),
    replicationReady: flexibleBoolean(broadcast.replication_ready, false),
    presenceEnabled: flexibleBoolean(presence.enabled, false),
    presenceKey: presenceKeyOf(presence.key),
    isPrivate: flexibleBoolean(config.private, false),
    replay: broadcast.replay,
    postgresChanges: changes.filter(isObject) as PostgresChangesParams[],
    waitForChangesMs: flexibleBoolean(options.wait, false) ? Math.min(waitMs, MAX_CHANGES_WAIT_MS) : undefined,
    accessToken: typeof token === 'string' ? token : undefined,
  };
}

/** JSON with object keys sorted at every level, so equal values always serialize the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The integer id of a `postgres_changes` binding: like the real server's `phash2` of the
 * params map, identical params give the identical id (within one channel and across
 * channels and restarts), in phash2's range 0..2^27-1.
 */
export function bindingId(params: PostgresChangesParams): number {
  return createHash('sha1').update(canonicalJson(params)).digest().readUInt32BE(0) >>> 5;
}
