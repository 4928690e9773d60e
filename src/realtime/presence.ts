// Presence as Phoenix Presence shapes it (reference §3): per channel topic, each key
// holds one meta per tracking channel; every change is published into the hub as a
// `presence_diff` (encoded once, delivered to every presence subscriber of the topic,
// the tracker included), and a joining channel gets the whole state as `presence_state`.
import { randomBytes } from 'node:crypto';
import type { Hub } from '../core/hub.js';
import { PRESENCE_DIFF } from './wire.js';

export interface PresenceMeta {
  [field: string]: unknown;
  phx_ref: string;
  phx_ref_prev?: string;
}

export interface PresenceDiff {
  joins: Record<string, { metas: PresenceMeta[] }>;
  leaves: Record<string, { metas: PresenceMeta[] }>;
}

export type PresenceState = Record<string, { metas: PresenceMeta[] }>;

/** A 16-character URL-safe ref from 12 random bytes, like Phoenix.Tracker's. */
function newRef(): string {
  return randomBytes(12).toString('base64url');
}

export class PresenceRegistry {
  /** hub topic → presence key → tracking member (a channel) → its meta. */
  private readonly topics = new Map<string, Map<string, Map<object, PresenceMeta>>>();
  /** `presence_state` JSON per topic, kept until the topic's presence changes: joins in a row share it. */
  private readonly stateCache = new Map<string, string>();
  private members = 0;

  constructor(
    private readonly hub: Hub,
    /** Told the total meta count after every change (the presence-members gauge). */
    private readonly onCount: (members: number) => void = () => undefined,
  ) {}

  get size(): number {
    return this.members;
  }

  /** Tracks (or updates) `member`'s meta under `key`: a join, or a join plus a leave of the old meta. */
  track(topic: string, key: string, member: object, payload: Record<string, unknown>): void {
    let keys = this.topics.get(topic);
    if (!keys) this.topics.set(topic, (keys = new Map()));
    let metas = keys.get(key);
    if (!metas) keys.set(key, (metas = new Map()));
    const previous = metas.get(member);
    const meta: PresenceMeta = { ...payload, phx_ref: newRef() };
    if (previous) meta.phx_ref_prev = previous.phx_ref;
    else this.count(1);
    metas.set(member, meta);
    this.stateCache.delete(topic);
    const diff: PresenceDiff = { joins: { [key]: { metas: [meta] } }, leaves: previous ? { [key]: { metas: [previous] } } : {} };
    this.hub.publish(topic, PRESENCE_DIFF, diff, { retain: false, origin: member });
  }

  /** Removes `member`'s meta under `key`, publishing the leave; false when it was not tracked. */
  untrack(topic: string, key: string, member: object): boolean {
    const keys = this.topics.get(topic);
    const metas = keys?.get(key);
    const meta = metas?.get(member);
    if (!keys || !metas || !meta) return false;
    metas.delete(member);
    if (metas.size === 0) keys.delete(key);
    if (keys.size === 0) this.topics.delete(topic);
    this.stateCache.delete(topic);
    this.count(-1);
    const diff: PresenceDiff = { joins: {}, leaves: { [key]: { metas: [meta] } } };
    this.hub.publish(topic, PRESENCE_DIFF, diff, { retain: false, origin: member });
    return true;
  }

  /** Everyone present on the topic, as `presence_state` carries it. */
  state(topic: string): PresenceState {
    const out: PresenceState = {};
    const keys = this.topics.get(topic);
    if (keys) for (const [key, metas] of keys) out[key] = { metas: [...metas.values()] };
    return out;
  }

  /** `state(topic)` as JSON, serialized once per change of the topic's presence. */
  stateJson(topic: string): string {
    let json = this.stateCache.get(topic);
    if (json === undefined) {
      json = JSON.stringify(this.state(topic));
      if (this.topics.has(topic)) this.stateCache.set(topic, json);
    }
    return json;
  }

  private count(delta: number): void {
    this.members += delta;
    this.onCount(this.members);
  }
}
