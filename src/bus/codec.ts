// How a message is written onto the bus and read back: JSON, with binary values (a
// Realtime broadcast's raw bytes, the JSON text it arrived as) carried as base64 so they
// come back as the same Buffers. One encoding per published message, one decoding per
// message per receiving node; never per subscriber. And how a topic name is written
// into a NATS subject or key.
import type { BusEnvelope } from './types.js';

const BYTES = '$fanout.b64';

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  // JSON.stringify has already called Buffer#toJSON on `value`; the holder still has the Buffer.
  const original = this[key];
  if (original instanceof Uint8Array) return { [BYTES]: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64') };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && BYTES in value) {
    const b64 = (value as Record<string, unknown>)[BYTES];
    if (typeof b64 === 'string') return Buffer.from(b64, 'base64');
  }
  return value;
}

/** The envelope without its topic, epoch and offset, which travel in the channel name, stream id or headers. */
export interface EnvelopeBody {
  event: string;
  data: unknown;
  ts: number;
  node: string;
  ref: number;
}

export function encodeBody(m: EnvelopeBody): string {
  return JSON.stringify({ e: m.event, d: m.data, t: m.ts, n: m.node, r: m.ref }, replacer);
}

export function decodeBody(topic: string, epoch: string, offset: number, text: string): BusEnvelope {
  // The reviver costs a call per value: only pay it when the text carries bytes.
  const o = JSON.parse(text, text.includes(BYTES) ? reviver : undefined) as { e: string; d: unknown; t: number; n: string; r: number };
  return { topic, epoch, offset, event: o.e, data: o.d, ts: o.t, node: o.n, ref: o.r };
}

/** A topic as one NATS subject token or KV key part (base64url: a topic may hold `.`, `*` or `>`). */
export function topicToken(topic: string): string {
  return Buffer.from(topic).toString('base64url');
}

export function tokenTopic(token: string): string {
  return Buffer.from(token, 'base64url').toString();
}
