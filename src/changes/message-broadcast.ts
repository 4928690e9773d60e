// The one place a row of `realtime.messages` becomes a broadcast, whoever wrote it
// (`realtime.send`, `realtime.send_binary`, `realtime.broadcast_changes`, a plain INSERT)
// and however the gateway read it (the trigger outbox's `to_jsonb(NEW)`, a decoded
// write-ahead-log tuple, the replay query). Supabase's rule (`pick_payload` in its
// replication_connection.ex): a row carries its binary payload if it has one, else its
// JSON payload; a row with neither is not a broadcast and is never sent, live or replayed
// (never as `payload: null`).
import type { Hub, HubMessage } from '../core/hub.js';
import { publishBroadcast, type BroadcastData } from '../realtime/channel-topics.js';
import type { MessageBody } from './types.js';

/**
 * A `realtime.messages` row as column name → value. Accepted forms, so every capture path
 * can hand its row over as it has it: `payload` as the parsed JSON value; `binary_payload`
 * as bytes (Buffer/Uint8Array from a driver) or PostgreSQL's hex text (`\x0a0b`, as
 * `to_jsonb` and the text output of a WAL decoder give it); `private` as a boolean or
 * PostgreSQL's text form (`t`/`f`).
 */
export type MessageRow = Readonly<Record<string, unknown>>;

/** Raw bytes of a bytea value in either form; undefined for NULL or anything else. */
function bytesOf(value: unknown): Buffer | undefined {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string' && /^\\x(?:[0-9a-fA-F]{2})*$/.test(value)) return Buffer.from(value.slice(2), 'hex');
  return undefined;
}

function booleanOf(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 't' || value === 'true') return true;
  if (value === 'f' || value === 'false') return false;
  return undefined;
}

/** What a row sends: its binary payload if it has one (even empty), else its JSON payload; undefined with neither. */
export function messageBody(row: MessageRow): MessageBody | undefined {
  const bytes = bytesOf(row.binary_payload);
  if (bytes) return { kind: 'binary', bytes };
  if (row.payload !== null && row.payload !== undefined) return { kind: 'json', payload: row.payload };
  return undefined;
}

/** A row's channel and hub message data. */
export interface DatabaseBroadcast {
  subtopic: string;
  isPrivate: boolean;
  data: BroadcastData;
}

/**
 * The broadcast a row stands for, or undefined when it is not one: another extension
 * (authorization probes), no topic, event or privacy flag (Supabase refuses those too), or
 * no payload. JSON goes out as a text `broadcast` frame, bytes as the v2 serializer's
 * binary user broadcast (kind 4, encoding 0); either way `meta.id` is the row id.
 */
export function databaseBroadcast(row: MessageRow): DatabaseBroadcast | undefined {
  if (row.extension !== undefined && row.extension !== 'broadcast') return undefined;
  const { topic, event } = row;
  const isPrivate = booleanOf(row.private);
  if (typeof topic !== 'string' || typeof event !== 'string' || event === '' || isPrivate === undefined) return undefined;
  const body = messageBody(row);
  if (!body) return undefined;
  const id = typeof row.id === 'string' ? row.id : undefined;
  const data: BroadcastData = body.kind === 'binary' ? { event, payload: body.bytes, id, frame: 'binary' } : { event, payload: body.payload, id, frame: 'text' };
  return { subtopic: topic, isPrivate, data };
}

/**
 * Publishes a row to its channel's subscribers on every node. Undefined when the row is
 * not a broadcast (see `databaseBroadcast`); rejects with `BusUnavailableError` when the
 * cluster bus is down.
 */
export function publishMessageRow(hub: Hub, row: MessageRow): Promise<HubMessage> | undefined {
  const broadcast = databaseBroadcast(row);
  return broadcast && publishBroadcast(hub, broadcast.subtopic, broadcast.isPrivate, broadcast.data);
}
