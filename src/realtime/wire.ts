// Hub message → Phoenix frame, once per wire format. A channel's fan-out frames carry
// `join_ref: null, ref: null` (reference §1.2 "fastlane"), so one encoding serves every
// subscriber of the topic; `HubMessage.encode` caches it per encoder object.
import type { HubMessage, WireEncoder } from '../core/hub.js';
import type { StoredBroadcast } from '../changes/types.js';
import { wireTopic, type BroadcastData } from './channel-topics.js';
import { encodeMessage, encodeUserBroadcast, type Vsn } from './codec.js';

/** Hub events the Realtime encoders understand besides `broadcast`. */
export const PRESENCE_DIFF = 'presence_diff';

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/** The `broadcast` payload object as JSON text, or null when the payload is raw bytes. */
export function broadcastPayloadJson(data: BroadcastData): string | null {
  let payload: string;
  if (data.json !== undefined) payload = typeof data.json === 'string' ? data.json : data.json.toString('utf8');
  else if (isBytes(data.payload)) return null;
  else payload = data.payload === undefined ? '{}' : JSON.stringify(data.payload);
  const meta = data.id === undefined ? '' : `,"meta":{"id":${JSON.stringify(data.id)}}`;
  return `{"type":"broadcast","event":${JSON.stringify(data.event)},"payload":${payload}${meta}}`;
}

function textEncoder(vsn: Vsn): WireEncoder<Buffer | null> {
  return {
    name: `phoenix-${vsn}-text`,
    encode(msg: HubMessage): Buffer | null {
      const topic = wireTopic(msg.topic);
      if (msg.event === 'broadcast') {
        const json = broadcastPayloadJson(msg.data as BroadcastData);
        return json === null ? null : encodeMessage(vsn, null, null, topic, 'broadcast', json);
      }
      return encodeMessage(vsn, null, null, topic, msg.event, JSON.stringify(msg.data));
    },
  };
}

/** Serializer 2.0.0 text frames. */
export const v2TextEncoder = textEncoder('2.0.0');
/** Serializer 1.0.0 text frames (a v1 socket cannot receive raw-byte payloads: those encode to null). */
export const v1TextEncoder = textEncoder('1.0.0');

/** Binary kind 4 for a `broadcast` whose data asks for it; null when it does not fit (then text is used). */
export const v2BinaryEncoder: WireEncoder<Buffer | null> = {
  name: 'phoenix-2.0.0-kind4',
  encode(msg: HubMessage): Buffer | null {
    const data = msg.data as BroadcastData;
    const topic = wireTopic(msg.topic);
    const metadata = data.id === undefined ? '' : JSON.stringify({ id: data.id });
    if (isBytes(data.payload) && !data.json) return encodeUserBroadcast(topic, data.event, metadata, 0, data.payload);
    const json = typeof data.json === 'string' ? Buffer.from(data.json) : (data.json ?? Buffer.from(data.payload === undefined ? '{}' : JSON.stringify(data.payload)));
    return encodeUserBroadcast(topic, data.event, metadata, 1, json);
  },
};

/** Picks the bytes and frame type for one socket's serializer: encode once per format, write many. */
export function frameFor(msg: HubMessage, vsn: Vsn): { bytes: Buffer; binary: boolean } | null {
  if (vsn === '1.0.0') {
    const bytes = msg.encode(v1TextEncoder);
    return bytes && { bytes, binary: false };
  }
  if (msg.event === 'broadcast' && (msg.data as BroadcastData).frame === 'binary') {
    const bytes = msg.encode(v2BinaryEncoder);
    if (bytes) return { bytes, binary: true };
  }
  const bytes = msg.encode(v2TextEncoder);
  return bytes && { bytes, binary: false };
}

/**
 * A broadcast replayed from `realtime.messages` (reference §4.3), marked `replayed`: JSON as
 * a text `broadcast` frame, bytes as a kind-4 binary frame. Null for bytes on a v1 socket,
 * which cannot carry them (Supabase skips them there too), or when the topic or event is
 * longer than the binary header allows.
 */
export function replayFrame(vsn: Vsn, topic: string, stored: StoredBroadcast): { bytes: Buffer; binary: boolean } | null {
  const meta = `{"replayed":true,"id":${JSON.stringify(stored.id)}}`;
  if (stored.body.kind === 'binary') {
    if (vsn === '1.0.0') return null;
    const bytes = encodeUserBroadcast(topic, stored.event, meta, 0, stored.body.bytes);
    return bytes && { bytes, binary: true };
  }
  const payload = `{"type":"broadcast","event":${JSON.stringify(stored.event)},"payload":${JSON.stringify(stored.body.payload)},"meta":${meta}}`;
  return { bytes: encodeMessage(vsn, null, null, topic, 'broadcast', payload), binary: false };
}

/** `data` of a change serialized once, however many channels receive it. */
const changeDataJson = new WeakMap<object, string>();
/** Whole frames per change, keyed by serializer, topic and binding ids: sockets sharing a channel share bytes. */
const changeFrames = new WeakMap<object, Map<string, Buffer>>();

/** The `postgres_changes` frame `[null, null, topic, "postgres_changes", {ids, data}]` for one channel. */
export function changeFrame(vsn: Vsn, topic: string, ids: readonly number[], data: object): Buffer {
  const key = `${vsn}\u0000${topic}\u0000${ids.join(',')}`;
  let frames = changeFrames.get(data);
  const cached = frames?.get(key);
  if (cached) return cached;
  let json = changeDataJson.get(data);
  if (json === undefined) changeDataJson.set(data, (json = JSON.stringify(data)));
  const bytes = encodeMessage(vsn, null, null, topic, 'postgres_changes', `{"ids":[${ids.join(',')}],"data":${json}}`);
  if (!frames) changeFrames.set(data, (frames = new Map()));
  frames.set(key, bytes);
  return bytes;
}
