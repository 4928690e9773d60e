// The bus: what gateway processes share so they behave as one. Every publish goes
// through it (one process too: the in-process engine), and it is the authority for each
// topic's epoch, offsets and history, so a resumable id means the same position on every
// node.
//
// Interest routing: a node receives the live messages of a topic only while it has
// subscribed to it (`subscribe`), which the hub does while the topic has local
// subscribers, so adding nodes adds capacity instead of multiplying every node's work.
//
// Three implementations: `memory` (the engine of one process, or of several gateways in
// one process for tests), `redis` (a Lua script assigns offsets, appends to Streams and
// SPUBLISHes per-topic sharded channels in one step; works on Redis Cluster) and `nats`
// (JetStream stores history and republishes each stored message on a per-topic core
// subject; a per-subject expected-last-sequence check makes offsets contiguous). The hub
// (src/core/hub.ts) keeps a local replica of the topics its node serves, fed in order by
// `BusHandlers.message`.
//
// Presence (`PresenceStore`) is a separate interface, as in Centrifugo (broker vs
// presence manager): members tracked on every node, tagged with the node that owns them,
// so the members of a node that stopped answering can be removed by the others.
import { DomainError } from '../core/errors.js';

export type BusKind = 'memory' | 'redis' | 'nats';

/** One message of one topic as it crosses the bus. `offset` 0 marks a message that is not retained. */
export interface BusEnvelope {
  topic: string;
  epoch: string;
  offset: number;
  event: string;
  data: unknown;
  /** Publish time, ms since the Unix epoch. */
  ts: number;
  /** The node that published it, and its local reference, so that node can find the message's origin again. */
  node: string;
  ref: number;
}

/**
 * One publish: the same message to one or more topics, as one bus operation (a progress
 * event goes to its content topic and its owner's topic together). Each topic numbers it
 * with its own next offset when `retain` is set.
 */
export interface Publication {
  topics: readonly string[];
  event: string;
  data: unknown;
  /** Publish time, ms since the Unix epoch. */
  ts: number;
  /** The publishing node and its local reference (see BusEnvelope). */
  node: string;
  ref: number;
  /** Keep it in each topic's history (with an offset) for resume. */
  retain: boolean;
  /**
   * Idempotency id: a publication whose id the bus has already applied to a topic (within
   * `BusOptions.dedupeTtlMs`) is not applied to that topic again, and the first publish's
   * position is returned. A retry after a failure part-way can therefore complete what is
   * missing without doubling what went through.
   */
  id?: string;
}

/** Where a publication landed in one topic: its epoch and offset (both empty/0 when not retained). */
export interface Published {
  epoch: string;
  offset: number;
  /** The publication's id had been applied to this topic before: nothing was published now. */
  duplicate?: boolean;
}

/** A topic's cluster-wide state: its epoch and last offset, and the retained messages after a given offset. */
export interface TopicSnapshot {
  epoch: string;
  offset: number;
  /** Retained messages with offsets above the requested one, oldest first, contiguous, ending at `offset` (may be empty when trimmed). */
  messages: BusEnvelope[];
}

export interface BusHandlers {
  /**
   * A live message of a topic this node subscribed to, in publish order per topic (a
   * message already in flight when the node unsubscribed may still arrive).
   */
  message(envelope: BusEnvelope): void;
  /**
   * The live feed was interrupted (the bus connection dropped and came back): messages may
   * have been missed, so every topic the node serves must be checked against the bus.
   */
  resync(): void;
  /** The connection state changed (for readiness and logs). */
  status?(connected: boolean, detail: string): void;
}

/** A presence member as the store keeps it. */
export interface PresenceEntry {
  /** Unique per tracked meta (Phoenix's phx_ref). */
  ref: string;
  /** The presence key the member tracks under. */
  key: string;
  meta: Record<string, unknown>;
  /** The node whose client tracked it. */
  node: string;
}

export interface PresenceStore {
  /** Adds or replaces a member of `topic` (owned by this node). */
  add(topic: string, entry: PresenceEntry): Promise<void>;
  /** Removes a member of `topic` by ref. */
  remove(topic: string, node: string, ref: string): Promise<void>;
  /** Every member of `topic` stored by live nodes. */
  list(topic: string): Promise<PresenceEntry[]>;
  /**
   * Marks this node alive (called every `nodeTimeoutMs / 3`) and returns the nodes that stopped
   * heartbeating and whose cleanup this node won: their members are then this node's to remove
   * (by `takeOver`), so each dead node is cleaned once per cluster, not once per survivor.
   */
  heartbeat(): Promise<string[]>;
  /** Removes every member the dead `node` had, returning them by topic (the caller publishes the leaves). */
  takeOver(node: string): Promise<Map<string, PresenceEntry[]>>;
}

/** Small shared records with a time to live (content items, so every node knows who owns what). */
export interface RecordStore {
  get(key: string): Promise<string | undefined>;
  /** Stores `value` under `key` for `ttlMs` (NATS: the bucket's TTL, `BusOptions.recordTtlMs`). */
  set(key: string, value: string, ttlMs: number): Promise<void>;
}

export interface Bus {
  readonly kind: BusKind;
  /** This process's node id on the bus. */
  readonly nodeId: string;
  /**
   * True when other gateways may be on this bus (Redis, NATS, a MemoryCluster of several
   * gateways): presence, content records and the change feed are then shared through it.
   * False for the in-process engine of a gateway that runs alone.
   */
  readonly shared: boolean;
  /** True while the bus connection is up (publishes can succeed). */
  readonly connected: boolean;
  /** Why it is not connected (or "connected"), for /readyz and logs. */
  readonly detail: string;
  readonly presence: PresenceStore;
  readonly records: RecordStore;
  /** Connects (retrying in the background if the bus is not reachable yet) and starts the live feed. */
  start(handlers: BusHandlers): Promise<void>;
  /**
   * Starts this node's live feed of `topic`. Resolves once the subscription is in place,
   * so a `load` made after it misses nothing: every later message arrives live. Kept
   * across reconnects until `unsubscribe`. Rejects with `BusUnavailableError` while the
   * bus is down (the subscription is still made when it comes back).
   */
  subscribe(topic: string): Promise<void>;
  /** Stops this node's live feed of `topic`. */
  unsubscribe(topic: string): void;
  /** Topics this node is subscribed to. */
  readonly subscriptions: number;
  /**
   * Publishes a message to its topics in one bus operation; retained, it gets each
   * topic's next offset atomically with storing it in history and fanning it out.
   * Resolves with one position per topic, in order. Rejects with `BusUnavailableError`
   * when the bus cannot take it: the caller must report that, never drop it silently.
   */
  publish(publication: Publication): Promise<Published[]>;
  /** The topic's state and retained messages after `after` (creating the topic's epoch if it has none). */
  load(topic: string, after: number): Promise<TopicSnapshot>;
  close(): Promise<void>;
}

/**
 * The bus cannot take or serve messages right now (disconnected, or it answered with an
 * error). Any route that meets it answers 503 with Retry-After (src/server/http-errors.ts);
 * a Realtime push is answered with the reason `bus_unavailable`.
 */
export class BusUnavailableError extends DomainError {
  constructor(
    readonly kind: BusKind,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super('unavailable', 'bus_unavailable', `the ${kind} bus is unavailable: ${detail}`, { retryAfterSeconds: 2, cause: options?.cause });
  }
}

/** Tunables every bus shares, from the gateway configuration. */
export interface BusOptions {
  /** Prefix of every key, stream, subject and channel, so several clusters (or test runs) can share one server. */
  prefix: string;
  /** Retained messages kept per topic. */
  historySize: number;
  /** How long a retained message stays resumable. */
  historyTtlMs: number;
  /** How long a node may miss heartbeats before its presence members are removed. */
  nodeTimeoutMs: number;
  /** This node's id (random when unset). */
  nodeId?: string;
  /** How long a publication id is remembered for deduplication (`Publication.id`). */
  dedupeTtlMs: number;
  /** How long a shared record lives after its last write (content items: `contentTtlMs`). */
  recordTtlMs: number;
}

/**
 * How long a member's presence entry is kept after it was tracked: a safety net only (members
 * leave by untrack, socket close or their node's death), long enough for a tab left open for days.
 */
export const PRESENCE_TTL_MS = 7 * 24 * 3600_000;

/** How long an idle topic's epoch and offset are kept on the bus (the epoch must outlive the history it names). */
export function topicStateTtlMs(options: BusOptions): number {
  return Math.max(options.historyTtlMs * 2, 24 * 3600_000);
}
