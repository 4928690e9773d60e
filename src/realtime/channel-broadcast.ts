// Broadcasts a client sends on its channel (reference §4), as the real server handles
// them: a private channel needs write permission (without it the message is dropped
// silently, without ack), then the size check, then one publish into the channel's hub
// topic (this node's members at once, the other nodes through the bus), then the ack if
// the channel asked for acks. The payload travels as the JSON text it arrived in: it is
// parsed once (with the frame) and never serialized again on its way to the members.
import { BusUnavailableError } from '../bus/types.js';
import type { Channel, Pending } from './channel.js';
import { publishToChannel, type BroadcastData } from './channel-topics.js';
import type { BroadcastPush } from './codec.js';
import { MAX_NAME_BYTES } from './join-config.js';

/** A kind-3 binary push (serializer 2.0.0): raw bytes (encoding 0) or JSON text (encoding 1). */
export function sendBroadcastPush(channel: Channel, push: BroadcastPush): Pending {
  const size = push.payload.length;
  if (push.encoding === 0) {
    return broadcast(channel, push.ref, size, () => ({ event: push.event, payload: push.payload, frame: 'binary' }));
  }
  return broadcast(channel, push.ref, size, () => {
    let payload: unknown;
    try {
      payload = JSON.parse(push.payload.toString('utf8'));
    } catch {
      return 'broadcast payload with JSON encoding is not valid JSON';
    }
    return { event: push.event, payload, json: push.payload, frame: 'binary' };
  });
}

/**
 * A JSON `broadcast` message (serializer 1.0.0 clients, or a v2 text frame). `received` is
 * the user payload's text as it stood in the frame (see `decodeText`), spliced into the
 * members' frames as it is.
 */
export function sendBroadcastText(channel: Channel, ref: string | null, message: Record<string, unknown>, received: string | undefined): Pending {
  const event = message.event;
  if (typeof event !== 'string' || event === '' || Buffer.byteLength(event) > MAX_NAME_BYTES) {
    channel.ctx.error('bad_request');
    const reason = typeof event === 'string' && event !== '' ? `broadcast event names are at most ${MAX_NAME_BYTES} bytes` : 'broadcast needs a string event';
    if (channel.ack) channel.reply(ref, 'error', { reason });
    return;
  }
  const json = received ?? JSON.stringify(message.payload ?? {});
  return broadcast(channel, ref, Buffer.byteLength(json), () => ({ event, payload: message.payload ?? {}, json, frame: 'text' }));
}

function broadcast(channel: Channel, ref: string | null, size: number, build: () => BroadcastData | string): Pending {
  const { permissions } = channel;
  if (permissions) {
    const allowed = permissions.knownWrite('broadcast');
    if (allowed === undefined) return permissions.lookUpWrite('broadcast').then(() => broadcast(channel, ref, size, build));
    if (!allowed) return;
  }
  const { ctx } = channel;
  if (size > ctx.limits.maxPayloadBytes) {
    ctx.error('payload_too_large');
    if (channel.ack) channel.reply(ref, 'error', 'payload_size_exceeded');
    return;
  }
  const data = build();
  if (typeof data === 'string') {
    ctx.error('bad_request');
    if (channel.ack) channel.reply(ref, 'error', { reason: data });
    return;
  }
  // This node's members get it at once (local first); the ack waits until the bus took it
  // for the other nodes, and if it could not, says so (never a silent drop).
  return publishToChannel(ctx.hub, channel.hubTopic, data, { origin: channel.fastlane }).then(
    () => {
      if (channel.ack && !channel.isClosed()) channel.reply(ref, 'ok', {});
    },
    (err: unknown) => {
      const busDown = err instanceof BusUnavailableError;
      ctx.error(busDown ? 'bus_unavailable' : 'internal');
      ctx.log.warn({ err, channel: channel.sub }, busDown ? 'broadcast not sent: the bus is unavailable' : 'broadcast not sent');
      if (!busDown) {
        if (channel.ack && !channel.isClosed()) channel.reply(ref, 'error', {});
        return;
      }
      if (!channel.isClosed()) {
        if (channel.ack) channel.reply(ref, 'error', { reason: 'bus_unavailable' });
        else channel.pushSystem('broadcast', 'error', 'the message was not sent: the gateway lost its connection to the cluster bus');
      }
    },
  );
}
