// How Realtime channels map onto hub topics, and the one way to publish a broadcast
// into a channel. The WebSocket side, the REST broadcast endpoints and the database's
// `realtime.send()` all publish through `publishBroadcast`, so a channel's subscribers
// receive the same bytes whoever sent them.
import type { Hub, HubMessage } from '../core/hub.js';

/** Public and private channels with the same name are separate fan-out groups, as in Supabase. */
export function channelTopic(subtopic: string, isPrivate: boolean): string {
  return `${isPrivate ? 'realtime-private' : 'realtime'}:${subtopic}`;
}

/** The hub message data of a Realtime broadcast (hub event `broadcast`). */
export interface BroadcastData {
  /** The user event name (`cursor`, `doc-update`, ...). */
  event: string;
  /** A JSON value, or raw bytes when the sender sent an ArrayBuffer (kind 3, encoding 0). */
  payload: unknown;
  /**
   * The payload's JSON text exactly as received (a kind-3 push with encoding 1, a REST
   * body: bytes; a text `broadcast` frame: the slice of the frame), already validated;
   * encoders splice it in instead of serializing `payload` again.
   */
  json?: Buffer | string;
  /** `meta.id` (REST batch messages may carry one; DB sends carry the message id). */
  id?: string;
  /**
   * How the real server frames it to v2 clients: `binary` (kind 4) for relayed client
   * pushes and the single REST endpoint, `text` (a JSON `broadcast` frame) for the batch
   * REST endpoint and `realtime.send()` from the database.
   */
  frame: 'binary' | 'text';
}

const PRIVATE_PREFIX = 'realtime-private:';

/** The topic clients see (`realtime:<sub>`) for a hub topic, private or not. */
export function wireTopic(hubTopic: string): string {
  return hubTopic.startsWith(PRIVATE_PREFIX) ? `realtime:${hubTopic.slice(PRIVATE_PREFIX.length)}` : hubTopic;
}

/**
 * Publishes a broadcast to every subscriber of the channel, on every node (not retained:
 * broadcasts are fire-and-forget). `origin` is the sending channel (for `self: false`), `id`
 * an idempotency id (a REST retry). Rejects with `BusUnavailableError` when the bus is down.
 */
export function publishBroadcast(hub: Hub, subtopic: string, isPrivate: boolean, data: BroadcastData, sender: { origin?: unknown; id?: string } = {}): Promise<HubMessage> {
  return publishToChannel(hub, channelTopic(subtopic, isPrivate), data, sender);
}

/** `publishBroadcast` to a channel's hub topic (`channelTopic`) as a joined channel already holds it. */
export function publishToChannel(hub: Hub, hubTopic: string, data: BroadcastData, sender: { origin?: unknown; id?: string } = {}): Promise<HubMessage> {
  return hub.publish(hubTopic, 'broadcast', data, { origin: sender.origin, id: sender.id, retain: false });
}
