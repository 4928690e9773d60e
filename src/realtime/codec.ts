// Phoenix Channels wire formats as realtime-js speaks them (reference §1.2):
//  - serializer 2.0.0: text frames are JSON arrays `[join_ref, ref, topic, event, payload]`;
//    binary kind 3 (user broadcast push, client → server) and kind 4 (user broadcast,
//    server → client). realtime-js decodes no other binary kind, so we never send one.
//  - serializer 1.0.0: JSON objects `{topic, event, payload, ref, join_ref}` in,
//    `{topic, event, payload, ref}` out.
// Everything returns Buffers so a frame is converted to bytes once and the same bytes
// are written to every socket (`ws.send(buffer, {binary: false})` does not copy).
import { elementSpan, memberSpan } from './json-span.js';

export type Vsn = '1.0.0' | '2.0.0';

/** One decoded client message (any event except a kind-3 broadcast push). */
export interface PhoenixMessage {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: unknown;
  /**
   * A `broadcast` message only: the user payload (`payload.payload`) as the JSON text it
   * stood in the frame, `{}` when it had none. Passed on as it is, never serialized again.
   */
  broadcastJson?: string;
}

/** A kind-3 user broadcast push: `channel.send({type: 'broadcast', ...})` on a joined v2 channel. */
export interface BroadcastPush {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  /** The user event (`cursor`). */
  event: string;
  /** JSON of whitelisted metadata keys (`persist`), or '' — carried, not acted on. */
  metadata: string;
  /** 1: `payload` is UTF-8 JSON; 0: raw bytes (the sender passed an ArrayBuffer). */
  encoding: 0 | 1;
  payload: Buffer;
}

export type Inbound = { kind: 'message'; message: PhoenixMessage } | { kind: 'broadcast_push'; push: BroadcastPush };

/**
 * A frame that cannot be understood. When the frame still named a topic and ref we can
 * answer with an error reply (`replyTo`); otherwise the socket is closed with `closeCode`.
 */
export class FrameError extends Error {
  constructor(
    message: string,
    readonly closeCode: number,
    readonly replyTo?: { joinRef: string | null; ref: string | null; topic: string },
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

/** WebSocket close codes used for protocol violations. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
} as const;

const USER_BROADCAST_PUSH = 3;
const USER_BROADCAST = 4;

function refOf(value: unknown): string | null | undefined {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** Decodes a text frame in the socket's serializer version; throws FrameError on anything malformed. */
export function decodeText(text: string, vsn: Vsn): PhoenixMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new FrameError(`malformed frame: not valid JSON (${(err as Error).message})`, CloseCode.invalidPayload);
  }
  let joinRef: unknown, ref: unknown, topic: unknown, event: unknown, payload: unknown;
  if (vsn === '2.0.0') {
    if (!Array.isArray(parsed) || parsed.length !== 5) {
      throw new FrameError('malformed frame: serializer 2.0.0 expects a JSON array [join_ref, ref, topic, event, payload]', CloseCode.invalidPayload);
    }
    [joinRef, ref, topic, event, payload] = parsed as unknown[];
  } else {
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new FrameError('malformed frame: serializer 1.0.0 expects a JSON object {topic, event, payload, ref, join_ref}', CloseCode.invalidPayload);
    }
    ({ join_ref: joinRef, ref, topic, event, payload } = parsed as Record<string, unknown>);
  }
  const jr = refOf(joinRef);
  const r = refOf(ref);
  if (typeof topic !== 'string' || jr === undefined || r === undefined) {
    throw new FrameError('malformed frame: topic must be a string and refs strings or null', CloseCode.invalidPayload);
  }
  if (typeof event !== 'string' || event === '') {
    throw new FrameError('malformed message: event must be a non-empty string', CloseCode.invalidPayload, { joinRef: jr, ref: r, topic });
  }
  if (payload !== undefined && (typeof payload !== 'object' || payload === null || Array.isArray(payload))) {
    throw new FrameError(`malformed message: payload of ${event} must be a JSON object`, CloseCode.invalidPayload, { joinRef: jr, ref: r, topic });
  }
  const broadcastJson = event === 'broadcast' ? broadcastJsonOf(text, vsn, payload as Record<string, unknown> | undefined) : undefined;
  return { joinRef: jr, ref: r, topic, event, payload: payload ?? {}, broadcastJson };
}

/** The user payload of a text `broadcast` frame as it stands in `text` (which JSON.parse accepted). */
function broadcastJsonOf(text: string, vsn: Vsn, message: Record<string, unknown> | undefined): string {
  const value = message?.payload;
  if (value === undefined || value === null) return '{}';
  const outer = vsn === '2.0.0' ? elementSpan(text, 0, 4) : memberSpan(text, 0, 'payload');
  const inner = outer && memberSpan(text, outer.start, 'payload');
  // Always found in a frame that parsed to a message with a payload; serialized only if a scan ever disagreed.
  return inner ? text.slice(inner.start, inner.end) : JSON.stringify(value);
}

/** Decodes a binary frame: only kind 3 exists client → server. */
export function decodeBinary(buf: Buffer): BroadcastPush {
  if (buf.length < 7) throw new FrameError(`malformed binary frame: ${buf.length} bytes is shorter than the 7-byte header`, CloseCode.invalidPayload);
  const kind = buf[0]!;
  if (kind !== USER_BROADCAST_PUSH) throw new FrameError(`unsupported binary frame kind ${kind} (only kind 3, user broadcast push, is accepted)`, CloseCode.unsupportedData);
  const lens = [buf[1]!, buf[2]!, buf[3]!, buf[4]!, buf[5]!];
  const encoding = buf[6]!;
  if (encoding !== 0 && encoding !== 1) throw new FrameError(`malformed binary frame: payload encoding ${encoding} is neither 0 (binary) nor 1 (JSON)`, CloseCode.invalidPayload);
  let offset = 7;
  const fields: string[] = [];
  for (const len of lens) {
    if (offset + len > buf.length) throw new FrameError('malformed binary frame: header lengths run past the end of the frame', CloseCode.invalidPayload);
    fields.push(buf.toString('utf8', offset, offset + len));
    offset += len;
  }
  const [joinRef, ref, topic, event, metadata] = fields as [string, string, string, string, string];
  if (!event) throw new FrameError('malformed binary frame: empty user event', CloseCode.invalidPayload, { joinRef: joinRef || null, ref: ref || null, topic });
  return { joinRef: joinRef || null, ref: ref || null, topic, event, metadata, encoding: encoding as 0 | 1, payload: buf.subarray(offset) };
}

/** Encodes one server → client message as a text frame. `joinRef` is not part of v1 frames. */
export function encodeMessage(vsn: Vsn, joinRef: string | null, ref: string | null, topic: string, event: string, payloadJson: string): Buffer {
  if (vsn === '2.0.0') return Buffer.from(`[${JSON.stringify(joinRef)},${JSON.stringify(ref)},${JSON.stringify(topic)},${JSON.stringify(event)},${payloadJson}]`);
  return Buffer.from(`{"topic":${JSON.stringify(topic)},"event":${JSON.stringify(event)},"payload":${payloadJson},"ref":${JSON.stringify(ref)}}`);
}

/** `phx_reply` with `{status, response}`. */
export function encodeReply(vsn: Vsn, joinRef: string | null, ref: string | null, topic: string, status: 'ok' | 'error', response: unknown): Buffer {
  return encodeMessage(vsn, joinRef, ref, topic, 'phx_reply', `{"status":"${status}","response":${JSON.stringify(response)}}`);
}

/**
 * Kind 4 (server → client user broadcast): `4, len(topic), len(event), len(meta), encoding`,
 * then topic, event, metadata and the payload bytes. Returns null when a field is longer
 * than the one-byte length allows; the caller then sends a text frame instead.
 */
export function encodeUserBroadcast(topic: string, event: string, metadata: string, encoding: 0 | 1, payload: Uint8Array): Buffer | null {
  const t = Buffer.from(topic);
  const e = Buffer.from(event);
  const m = Buffer.from(metadata);
  if (t.length > 255 || e.length > 255 || m.length > 255) return null;
  const header = Buffer.from([USER_BROADCAST, t.length, e.length, m.length, encoding]);
  return Buffer.concat([header, t, e, m, payload]);
}
