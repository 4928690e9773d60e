// Presence on one channel (reference §3): `track` and `untrack` from the client, limited
// per channel as Supabase limits them, and the `presence_state` a member gets when it
// joins (or when a track turns presence on). The members themselves are kept by the
// gateway's PresenceRegistry (presence.ts); a channel has a ChannelPresence only once it
// sent a presence message.
import type { Channel, Pending } from './channel.js';
import { isObject } from './join-config.js';
import { WindowLimiter } from './limits.js';
import type { PresenceMember, PresenceMeta } from './presence.js';

/** Keys the registry writes into a meta: a payload that has them itself cannot be read back from its meta. */
function hasRefKeys(payload: Record<string, unknown>): boolean {
  return Object.hasOwn(payload, 'phx_ref') || Object.hasOwn(payload, 'phx_ref_prev');
}

/** The JSON of the payload a meta was made from: the meta without the keys the registry added. */
function payloadJsonOf(meta: PresenceMeta): string {
  const { phx_ref: _ref, phx_ref_prev: _previous, ...payload } = meta;
  return JSON.stringify(payload);
}

/**
 * A channel's presence, which is also the window its presence calls are counted in (a
 * subclass rather than a field, so a tracking member costs one object, not two) and the
 * member the PresenceRegistry tracks (it keeps the member's meta here).
 */
export class ChannelPresence extends WindowLimiter implements PresenceMember {
  presenceMeta: PresenceMeta | undefined;
  /**
   * The JSON of the tracked payload when its meta cannot give it back (the payload had a
   * `phx_ref` key of its own); otherwise it is read from `presenceMeta` when needed.
   */
  private trackedJson: string | undefined;

  constructor(channel: Channel) {
    const { limits } = channel.ctx;
    super(limits.presenceMaxCalls, limits.presenceWindowMs);
  }

  /** A `presence` message: `{event: "track", payload}` or `{event: "untrack"}`. */
  receive(channel: Channel, ref: string | null, message: Record<string, unknown>): Pending {
    if (typeof message.event !== 'string') {
      channel.reply(ref, 'ok', {});
      return;
    }
    if (!this.take()) {
      channel.ctx.error('rate_limit');
      channel.shutdown('Client presence rate limit exceeded');
      return;
    }
    switch (message.event.toLowerCase()) {
      case 'track':
        return this.track(channel, ref, 'payload' in message ? message.payload : {});
      case 'untrack':
        this.untrack(channel);
        channel.reply(ref, 'ok', {});
        return;
      default:
        channel.ctx.error('bad_request');
        channel.reply(ref, 'error', {});
    }
  }

  private track(channel: Channel, ref: string | null, value: unknown): Pending {
    const { ctx, fastlane, permissions } = channel;
    if (permissions && permissions.knownWrite('presence') === undefined) {
      return (async () => {
        // A track can be what enables presence; read permission for presence is then evaluated now.
        if (!fastlane.presenceEnabled) await permissions.evaluateReads(true).catch(() => false);
        await permissions.lookUpWrite('presence');
        return this.track(channel, ref, value);
      })();
    }
    if (permissions && !permissions.knownWrite('presence')) {
      channel.reply(ref, 'error', {});
      return;
    }
    if (!isObject(value)) {
      ctx.error('bad_request');
      channel.reply(ref, 'error', { reason: 'Presence track payload must be a map' });
      return;
    }
    const json = JSON.stringify(value);
    if (Buffer.byteLength(json) > ctx.limits.maxPayloadBytes) {
      ctx.error('payload_too_large');
      channel.shutdown('Track message size exceeded');
      return;
    }
    if (json === this.trackedPayloadJson()) {
      channel.reply(ref, 'ok', {});
      return;
    }
    ctx.presence.track(channel.hubTopic, channel.presenceKey, this, value);
    this.trackedJson = hasRefKeys(value) ? json : undefined;
    const enabledNow = !fastlane.presenceEnabled;
    fastlane.enablePresence();
    channel.reply(ref, 'ok', {});
    // Tracking enabled presence for a channel that joined without it: it never got the
    // join-time state, so send it now or the members tracked earlier stay invisible to it.
    if (enabledNow && fastlane.presenceRead) pushPresenceState(channel);
  }

  /** The JSON of the payload tracked now, undefined when nothing is. */
  private trackedPayloadJson(): string | undefined {
    if (this.presenceMeta === undefined) return undefined;
    return this.trackedJson ?? payloadJsonOf(this.presenceMeta);
  }

  /** Removes the channel's member from the topic's presence (a leave to everyone), if it is tracked. */
  untrack(channel: Channel): void {
    if (this.presenceMeta === undefined) return;
    this.trackedJson = undefined;
    channel.ctx.presence.untrack(channel.hubTopic, channel.presenceKey, this);
  }
}

/** Sends the topic's `presence_state` to the channel: this node's members, or in a cluster every node's. */
export function pushPresenceState(channel: Channel): void {
  const { presence, log, sharedPresence } = channel.ctx;
  const { socket, joinRef, topic } = channel;
  if (!sharedPresence) {
    socket.push(joinRef, null, topic, 'presence_state', presence.stateJson(channel.hubTopic));
    return;
  }
  // Cluster: the members of every node, read from the bus's presence store. Diffs that arrive
  // first are held by the client until the state comes (Phoenix presence's pending diffs).
  presence.clusterStateJson(channel.hubTopic).then(
    (json) => {
      if (channel.state === 'joined') socket.push(joinRef, null, topic, 'presence_state', json);
    },
    (err: unknown) => {
      log.warn({ err, channel: channel.sub }, 'presence_state not sent: the bus is unavailable');
      if (channel.state === 'joined') channel.pushSystem('presence', 'error', 'presence state is unavailable: the gateway lost its connection to the cluster bus');
    },
  );
}
