// What the coordinator tells each worker process to do, and what workers report back,
// over the child-process IPC channel (JSON). One worker holds many connections on one
// event loop; histograms travel encoded and are merged by the coordinator.
import type { EncodedHistograms } from './histogram.js';
import type { ConnectionPattern } from './schedule.js';
import type { SequenceCounts } from './sequence.js';

export type GroupName = 'sse' | 'realtime';

/** Sequence kinds a roll call can owe a subscriber (roll-call.ts): SSE progress, Realtime document broadcasts, comments. */
export type OwedKind = 'sse' | 'realtime.broadcast' | 'realtime.comments';

export interface SseConnectionPlan {
  /** Global connection index (for naming and source-address choice). */
  id: number;
  url: string;
  /** Which audience (stream set) this connection belongs to, for fan-out accounting. */
  audience: string;
  /**
   * The stream whose `seq` this connection sees (the hub topic it subscribes to; the URL for
   * any other SSE endpoint): single-topic streams do not repeat their topic in each event.
   */
  stream: string;
  /** ms after t0 when this connection should open. */
  at: number;
}

export interface SseWorkerPlan {
  connections: SseConnectionPlan[];
  headers: Record<string, string>;
  /** Reconnect after a drop, sending Last-Event-ID (what EventSource does). */
  reconnect: boolean;
  /** Reconnect delay when the server sent no `retry:`. */
  reconnectDelayMs: number;
  connectTimeoutMs: number;
  pattern: ConnectionPattern;
  /** Sustained pattern: mean lifetime before a connection is replaced. */
  churnMeanMs: number;
}

export interface RealtimeUserPlan {
  id: number;
  project: string;
  /** Presence key (user id). */
  userKey: string;
  at: number;
  /** This user edits the project's document: sends a broadcast every `docIntervalMs`. */
  sendsDoc: boolean;
}

export type RealtimeClientKind = 'raw' | 'supabase-js';

export interface RealtimeWorkerPlan {
  /** raw: Phoenix v2 over `ws` (thousands per process); supabase-js: one real client per user (fidelity). */
  client: RealtimeClientKind;
  /** Full WebSocket URL including apikey and vsn (raw client). */
  wsUrl: string;
  /** Project URL handed to createClient (supabase-js client). */
  httpUrl: string;
  /** Access token sent in phx_join (the anon key, or a user JWT). */
  accessToken: string;
  users: RealtimeUserPlan[];
  presence: boolean;
  /** ms between presence updates (track with a new stamp) per user; 0 = track once. */
  presenceIntervalMs: number;
  /** ms between document broadcasts per sending user; 0 = none. */
  docIntervalMs: number;
  /** Subscribe to postgres_changes on the comments table. */
  comments: boolean;
  commentsTable: { schema: string; table: string; filterColumn: string };
  heartbeatMs: number;
  connectTimeoutMs: number;
  reconnect: boolean;
  pattern: ConnectionPattern;
  churnMeanMs: number;
}

export interface WorkerPlan {
  runId: string;
  workerIndex: number;
  /** Worker processes in this run (connections are dealt round-robin over them). */
  workers: number;
  /** Source addresses to spread connections over (loopback targets), or null to let the OS choose. */
  localAddresses: string[] | null;
  tickMs: number;
  /**
   * This worker's host clock minus the coordinator's, measured by the coordinator (0 for a
   * local worker): the worker subtracts it so all stamps are on the coordinator's clock.
   */
  clockOffsetMs?: number;
  sse?: SseWorkerPlan;
  realtime?: RealtimeWorkerPlan;
}

/**
 * Last sequence number published per stream, numbers known not to have been published
 * (failed sends) and, for a stream that began before the roll call closed (a document
 * broadcast), the first number sent after it (roll-call.ts).
 */
export interface PublishedStreams {
  [stream: string]: { last: number; failed: number[]; owedFrom?: number };
}

/** One delivered message's fan-out, aggregated within a worker tick. */
export type FanoutRecord = [stream: string, seq: number, publishTs: number, receivers: number, lastReceiveTs: number, audience: string, exclude: number];

export interface SelfHealth {
  /** CPU of this process as % of one core over the tick. */
  cpuPct: number;
  rssBytes: number;
}

export interface WorkerTick {
  type: 'tick';
  worker: number;
  t: number;
  histograms: EncodedHistograms;
  /** Counter increments during the tick, e.g. `sse.messages`, `realtime.bytes_in`. */
  counters: Record<string, number>;
  /** Errors during the tick by `group:kind`. */
  errors: Record<string, number>;
  /** Current values, e.g. `sse.open`, `realtime.joined`. */
  gauges: Record<string, number>;
  /** Live subscribers per audience right now. */
  audiences: Record<string, number>;
  fanout: FanoutRecord[];
  self: SelfHealth;
}

export interface WorkerFinal {
  type: 'final';
  worker: number;
  sequences: Partial<Record<string, SequenceCounts>>;
  uptime: Partial<Record<GroupName, { connectedMs: number; expectedMs: number; drops: number }>>;
  closeCodes: Record<string, number>;
  /** Streams this worker published (realtime document broadcasts and presence updates). */
  published: PublishedStreams;
}

export type CoordinatorMessage =
  | { type: 'plan'; plan: WorkerPlan }
  | { type: 'start'; t0: number; endAt: number }
  /** Mark the subscribers live now (roll-call.ts); `fromFirst`: kinds the coordinator publishes from their first number after this. */
  | { type: 'roll-call'; fromFirst: OwedKind[] }
  | { type: 'roll-call-closed' }
  | { type: 'stop-publishing' }
  | { type: 'finish'; published: PublishedStreams }
  | { type: 'exit' };

export type WorkerMessage =
  | { type: 'ready'; worker: number }
  | { type: 'planned'; worker: number }
  | WorkerTick
  /** The answer to a roll call: how many subscribers this worker marked. */
  | { type: 'present'; worker: number; subscribers: number }
  | { type: 'published'; worker: number; published: PublishedStreams }
  | WorkerFinal
  | { type: 'fatal'; worker: number; message: string };
