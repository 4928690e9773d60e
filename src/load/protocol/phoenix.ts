// Phoenix Channels serializer 2.0.0 as realtime-js speaks it (spec §1.2): text frames
// are JSON arrays [join_ref, ref, topic, event, payload]; a client broadcast is a
// binary kind-3 frame; the server relays broadcasts as binary kind 4 or as a JSON
// `broadcast` text frame. Only what a load client needs: encode joins, heartbeats,
// presence and broadcasts; decode every server frame into one shape.

export type PhoenixFrame = [joinRef: string | null, ref: string | null, topic: string, event: string, payload: unknown];

export interface DecodedMessage {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: unknown;
}

export function encodeText(joinRef: string | null, ref: string | null, topic: string, event: string, payload: unknown): string {
  return JSON.stringify([joinRef, ref, topic, event, payload]);
}

export function heartbeatFrame(ref: string): string {
  return encodeText(null, ref, 'phoenix', 'heartbeat', {});
}

const encoder = new TextEncoder();

/**
 * Binary kind 3: a user broadcast pushed by a client. Header bytes
 * `3, len(join_ref), len(ref), len(topic), len(event), len(metadata), encoding(1 = JSON)`
 * then the strings and the JSON payload.
 */
export function encodeBroadcastPush(joinRef: string, ref: string, topic: string, event: string, payload: unknown): Buffer {
  const parts = [joinRef, ref, topic, event, ''].map((s) => encoder.encode(s));
  for (const p of parts) if (p.length > 255) throw new Error(`phoenix kind-3 field longer than 255 bytes (${p.length})`);
  const body = encoder.encode(JSON.stringify(payload ?? {}));
  const header = Buffer.from([3, parts[0]!.length, parts[1]!.length, parts[2]!.length, parts[3]!.length, parts[4]!.length, 1]);
  return Buffer.concat([header, ...parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.length)), Buffer.from(body.buffer, body.byteOffset, body.length)]);
}

const decoder = new TextDecoder();

export class PhoenixDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PhoenixDecodeError';
  }
}

/** Decodes a text frame or a binary kind-4 broadcast into the v2 message shape. */
export function decodeFrame(data: Buffer | ArrayBuffer | Buffer[] | string, isBinary: boolean): DecodedMessage {
  if (!isBinary) {
    const text = typeof data === 'string' ? data : Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
    const arr = JSON.parse(text) as unknown;
    if (!Array.isArray(arr) || arr.length !== 5) throw new PhoenixDecodeError(`text frame is not a 5-element array: ${text.slice(0, 80)}`);
    return { joinRef: arr[0] as string | null, ref: arr[1] as string | null, topic: String(arr[2]), event: String(arr[3]), payload: arr[4] };
  }
  const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
  if (buf[0] !== 4) throw new PhoenixDecodeError(`unexpected binary frame kind ${buf[0]}`);
  if (buf.length < 5) throw new PhoenixDecodeError('binary kind-4 frame shorter than its header');
  const topicLen = buf[1]!;
  const eventLen = buf[2]!;
  const metaLen = buf[3]!;
  const encoding = buf[4]!;
  let off = 5;
  const topic = decoder.decode(buf.subarray(off, (off += topicLen)));
  const userEvent = decoder.decode(buf.subarray(off, (off += eventLen)));
  const metaText = decoder.decode(buf.subarray(off, (off += metaLen)));
  const body = buf.subarray(off);
  const inner: Record<string, unknown> = { type: 'broadcast', event: userEvent, payload: encoding === 1 ? (JSON.parse(decoder.decode(body)) as unknown) : body };
  if (metaLen > 0) inner.meta = JSON.parse(metaText) as unknown;
  return { joinRef: null, ref: null, topic, event: 'broadcast', payload: inner };
}
