// Presence as Phoenix Presence shapes it (reference §3): per channel topic, each key
// holds one meta per tracking channel; every change is published into the hub as a
// `presence_diff` (encoded once, delivered to every presence subscriber of the topic,
// the tracker included), and a joining channel gets the whole state as `presence_state`.
//
// In a cluster (a bus is configured) the diffs travel through the bus to every node, and
// each member is also written to the bus's presence store tagged with this node, so a
// join on any node gets the members of every node in `presence_state`. Every node
// heartbeats on the bus; when a node stops (crash, network split), the first survivor to
// notice claims it, removes its members from the store and publishes their leaves, within
// `--bus-node-timeout-ms` plus one heartbeat period.
import { randomBytes } from 'node:crypto';
import type { Hub } from '../core/hub.js';
import type { Logger } from '../core/log.js';
import type { Bus, PresenceEntry } from '../bus/types.js';
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

/**
 * The meta of a track: the payload's fields plus `phx_ref`. Copied with Object.assign, not
 * spread: V8 gives each spread copy of a parsed object with a fractional number its own
 * hidden class (~150 bytes per member), while assigned copies share one.
 */
function metaOf(payload: Record<string, unknown>): PresenceMeta {
  // Object.assign would set the prototype for a `__proto__` key instead of copying it.
  const meta = (Object.hasOwn(payload, '__proto__') ? { ...payload } : Object.assign({}, payload)) as PresenceMeta;
  meta.phx_ref = newRef();
  return meta;
}

/**
 * A tracking member (a channel's presence). The registry keeps the member's current meta on
 * the member itself, so a member costs the registry no object of its own. A member is
 * tracked under one topic and key at a time.
 */
export interface PresenceMember {
  presenceMeta?: PresenceMeta | undefined;
}

/** The members tracked under one key: the only one (the common case, a key per user), or a Set in the order they tracked. */
type KeyMembers = PresenceMember | Set<PresenceMember>;

function holds(held: KeyMembers | undefined, member: PresenceMember): boolean {
  return held === member || (held instanceof Set && held.has(member));
}

export class PresenceRegistry {
  /** hub topic → presence key → tracking members (channels' presence), each holding its meta. */
  private readonly topics = new Map<string, Map<string, KeyMembers>>();
  /** `presence_state` JSON per topic, kept until the topic's presence changes: joins in a row share it. */
  private readonly stateCache = new Map<string, string>();
  private members = 0;

  private lastHeartbeat = 0;
  private heartbeating = false;

  constructor(
    private readonly hub: Hub,
    /** Told the total meta count after every change (the presence-members gauge). */
    private readonly onCount: (members: number) => void = () => undefined,
    /** The cluster bus, when there is one: members are shared through its presence store. */
    private readonly bus?: Bus,
    private readonly log?: Logger,
  ) {}

  /** Publishes a diff to every node; in a cluster a failure is logged (the store keeps the truth for later joins). */
  private publishDiff(topic: string, diff: PresenceDiff, member: object | undefined): void {
    if (!this.bus) {
      void this.hub.publish(topic, PRESENCE_DIFF, diff, { retain: false, origin: member });
      return;
    }
    this.hub.publish(topic, PRESENCE_DIFF, diff, { retain: false, origin: member }).catch((err: unknown) => this.log?.warn({ err, topic }, 'presence diff not published: the bus is unavailable'));
  }

  private stored(topic: string, op: Promise<void> | undefined): void {
    op?.catch((err: unknown) => this.log?.warn({ err, topic }, 'presence store not updated: the bus is unavailable'));
  }

  private storeAdd(topic: string, key: string, meta: PresenceMeta): void {
    const bus = this.bus;
    if (bus) this.stored(topic, bus.presence.add(topic, { ref: meta.phx_ref, key, meta, node: bus.nodeId }));
  }

  private storeRemove(topic: string, meta: PresenceMeta): void {
    const bus = this.bus;
    if (bus) this.stored(topic, bus.presence.remove(topic, bus.nodeId, meta.phx_ref));
  }

  /**
   * Cluster: from the shared sweep, every third of the node timeout, marks this node alive
   * and publishes the leaves of the members of nodes that died (those this node claimed).
   */
  tick(now: number, nodeTimeoutMs: number): void {
    const bus = this.bus;
    if (!bus || this.heartbeating || now - this.lastHeartbeat < nodeTimeoutMs / 3) return;
    this.lastHeartbeat = now;
    this.heartbeating = true;
    void this.heartbeat(bus)
      .catch((err: unknown) => this.log?.warn({ err }, 'presence heartbeat failed'))
      .finally(() => (this.heartbeating = false));
  }

  /** Marks this node alive now (also called at start-up, so its members are visible at once). */
  async heartbeat(bus: Bus): Promise<void> {
    const dead = await bus.presence.heartbeat();
    for (const node of dead) {
      const byTopic = await bus.presence.takeOver(node);
      let members = 0;
      for (const [topic, entries] of byTopic) {
        members += entries.length;
        this.publishDiff(topic, { joins: {}, leaves: groupByKey(entries) }, undefined);
      }
      this.log?.warn({ node, members, topics: byTopic.size }, 'a gateway node stopped heartbeating: removed its presence members');
    }
  }

  get size(): number {
    return this.members;
  }

  /** Tracks (or updates) `member`'s meta under `key`: a join, or a join plus a leave of the old meta. */
  track(topic: string, key: string, member: PresenceMember, payload: Record<string, unknown>): void {
    let keys = this.topics.get(topic);
    if (!keys) this.topics.set(topic, (keys = new Map()));
    const held = keys.get(key);
    const previous = holds(held, member) ? member.presenceMeta : undefined;
    const meta = metaOf(payload);
    if (previous) meta.phx_ref_prev = previous.phx_ref;
    else this.count(1);
    member.presenceMeta = meta;
    if (held === undefined) keys.set(key, member);
    else if (held instanceof Set) held.add(member);
    else if (held !== member) keys.set(key, new Set([held, member]));
    this.stateCache.delete(topic);
    const diff: PresenceDiff = { joins: { [key]: { metas: [meta] } }, leaves: previous ? { [key]: { metas: [previous] } } : {} };
    this.storeAdd(topic, key, meta);
    if (previous) this.storeRemove(topic, previous);
    this.publishDiff(topic, diff, member);
  }

  /** Removes `member`'s meta under `key`, publishing the leave; false when it was not tracked. */
  untrack(topic: string, key: string, member: PresenceMember): boolean {
    const keys = this.topics.get(topic);
    const held = keys?.get(key);
    const meta = member.presenceMeta;
    if (!keys || !holds(held, member) || !meta) return false;
    member.presenceMeta = undefined;
    if (held instanceof Set) held.delete(member);
    if (!(held instanceof Set) || held.size === 0) keys.delete(key);
    if (keys.size === 0) this.topics.delete(topic);
    this.stateCache.delete(topic);
    this.count(-1);
    const diff: PresenceDiff = { joins: {}, leaves: { [key]: { metas: [meta] } } };
    this.storeRemove(topic, meta);
    this.publishDiff(topic, diff, member);
    return true;
  }

  /** Everyone present on the topic, as `presence_state` carries it. */
  state(topic: string): PresenceState {
    const out: PresenceState = {};
    const keys = this.topics.get(topic);
    if (keys) for (const [key, held] of keys) out[key] = { metas: held instanceof Set ? [...held].map((m) => m.presenceMeta!) : [held.presenceMeta!] };
    return out;
  }

  /**
   * Cluster: everyone present on the topic on every node: this node's members as it knows
   * them, the others' from the bus's presence store (members of dead nodes excluded).
   */
  async clusterStateJson(topic: string): Promise<string> {
    const bus = this.bus;
    if (!bus) return this.stateJson(topic);
    const others = (await bus.presence.list(topic)).filter((e) => e.node !== bus.nodeId);
    const state = this.state(topic);
    for (const e of others) (state[e.key] ??= { metas: [] }).metas.push(e.meta as PresenceMeta);
    return JSON.stringify(state);
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

function groupByKey(entries: PresenceEntry[]): Record<string, { metas: PresenceMeta[] }> {
  const out: Record<string, { metas: PresenceMeta[] }> = {};
  for (const e of entries) (out[e.key] ??= { metas: [] }).metas.push(e.meta as PresenceMeta);
  return out;
}
