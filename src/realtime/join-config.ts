// The `phx_join` payload as the real server reads it (reference §2.2): booleans also
// accept "true"/"false" strings, unknown keys are ignored, an invalid part falls back to
// its default instead of failing the join, `postgres_changes` entries are kept exactly as
// sent, and an empty presence key becomes a server-generated id.
import { createHash, randomUUID } from 'node:crypto';
import type { PostgresChangesParams } from '../changes/types.js';

/**
 * The most bytes a name a client chooses may have: a topic (`realtime:<sub>`), a broadcast
 * event, a presence key. Supabase's binary serializer carries topic and event lengths in
 * one byte, so 255 is its limit too.
 */
export const MAX_NAME_BYTES = 255;

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
  /**
   * Why the join must be refused, as an `InvalidJoinPayload: …` reason: a postgres_changes
   * binding that is not a map or has a field that is not a string (what Supabase's join
   * schema rejects), too many bindings, or a presence key over its size.
   */
  problem: string | undefined;
}

/** Limits on the sizes a join payload may choose. */
export interface JoinPayloadLimits {
  maxBindings: number;
  /** Largest presence key in bytes (as the key's string form). */
  maxPresenceKeyBytes: number;
}

const DEFAULT_PAYLOAD_LIMITS: JoinPayloadLimits = { maxBindings: 100, maxPresenceKeyBytes: MAX_NAME_BYTES };

/** The string fields of a postgres_changes binding (Supabase's `PostgresChange` schema). */
const BINDING_STRING_FIELDS = ['event', 'schema', 'table', 'filter'] as const;

/**
 * Checks `config.postgres_changes` as Supabase's join schema casts it (an array of maps whose
 * event, schema, table and filter are strings; nulls are dropped), with Ecto's wording, plus
 * the number of bindings. Whether the params name something to subscribe to is checked later,
 * by the change feed, and reported in a `system` message as Supabase does.
 */
function bindingsProblem(changes: unknown, maxBindings: number): string | undefined {
  if (changes === undefined || changes === null) return undefined;
  if (!Array.isArray(changes)) return 'InvalidJoinPayload: config.postgres_changes: unable to parse, expected an array of maps';
  const bindings = changes.filter((b) => b !== null);
  if (bindings.length > maxBindings) return `InvalidJoinPayload: config.postgres_changes: ${bindings.length} bindings, at most ${maxBindings} per join (--realtime-max-bindings-per-join)`;
  for (let i = 0; i < bindings.length; i++) {
    const b: unknown = bindings[i];
    if (!isObject(b)) return 'InvalidJoinPayload: config.postgres_changes: unable to parse, expected an array of maps';
    for (const field of BINDING_STRING_FIELDS) {
      if (b[field] !== undefined && b[field] !== null && typeof b[field] !== 'string') return `InvalidJoinPayload: config.postgres_changes[${i}].${field}: unable to parse, expected string`;
    }
  }
  return undefined;
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

/** A JSON object (not an array, not null): what a join, track or REST payload must be. */
export function isObject(value: unknown): value is Record<string, unknown> {
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

export function parseJoinPayload(payload: Record<string, unknown>, limits: JoinPayloadLimits = DEFAULT_PAYLOAD_LIMITS): JoinConfig {
  const config = isObject(payload.config) ? payload.config : {};
  const broadcast = isObject(config.broadcast) ? config.broadcast : {};
  const presence = isObject(config.presence) ? config.presence : {};
  const changes = Array.isArray(config.postgres_changes) ? config.postgres_changes : [];
  const token = payload.access_token ?? payload.user_token;
  const options = isObject(config.postgres_changes_options) ? config.postgres_changes_options : {};
  const waitMs = typeof options.timeout === 'number' && options.timeout > 0 ? options.timeout : DEFAULT_CHANGES_WAIT_MS;
  const presenceKey = presenceKeyOf(presence.key);
  const problem =
    bindingsProblem(config.postgres_changes, limits.maxBindings) ??
    (Buffer.byteLength(presenceKey) > limits.maxPresenceKeyBytes ? `InvalidJoinPayload: config.presence.key: at most ${limits.maxPresenceKeyBytes} bytes` : undefined);
  return {
    ack: flexibleBoolean(broadcast.ack, false),
    self: flexibleBoolean(broadcast.self, false),
    replicationReady: flexibleBoolean(broadcast.replication_ready, false),
    presenceEnabled: flexibleBoolean(presence.enabled, false),
    presenceKey,
    isPrivate: flexibleBoolean(config.private, false),
    replay: broadcast.replay,
    postgresChanges: changes.filter(isObject) as PostgresChangesParams[],
    waitForChangesMs: flexibleBoolean(options.wait, false) ? Math.min(waitMs, MAX_CHANGES_WAIT_MS) : undefined,
    accessToken: typeof token === 'string' ? token : undefined,
    problem,
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
