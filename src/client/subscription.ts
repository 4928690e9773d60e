// A subscription: what `progress()`, `userProgress()` and `subscribe()` return. It keeps
// its own position in each of its topics and applies every event against it:
//
// - an event at or before the position is a duplicate (a replay after a reconnect, a
//   fallback switch, a second leader during a hand-over) and is dropped;
// - the next offset is delivered;
// - a later offset is a gap (it joined a live topic late, a hand-over started the new
//   leader's stream after it, a reset was reported for someone else's position): the
//   subscription fills it itself with an immediate poll from its position, holding live
//   events meanwhile, then continues.
//
// A checkpoint (the stream's `ready`, a poll's `lastEventId`: "everything up to here has
// been sent") that is ahead of the position is a gap too, which catches a missed final
// event that no later event would reveal. So whatever the connection does, the app sees
// each event once, in order, or an explicit `reset` — never a silent skip.
import { Backoff } from './backoff.js';
import { Emitter } from './emitter.js';
import { FanoutHttpError } from './http.js';
import { formatPosition, parsePosition, type Position, type Start } from './position.js';
import { toMessage, toResetInfo, type PollAnswer } from './wire.js';
import type { ConnectionState, FanoutErrorInfo, FanoutMessage, MessageData, ResetInfo } from './types.js';

/** Events that end a content item: a `progress()` subscription ends after one of them. */
export const FINAL_EVENTS: ReadonlySet<string> = new Set(['complete', 'failed']);

/** Most live events held while a gap is being filled; beyond it they are dropped and refetched. */
const MAX_HELD = 1000;

export type EndReason = 'complete' | 'failed' | 'ended' | 'refused' | 'closed';

export interface EndInfo {
  readonly topic: string | undefined;
  readonly reason: EndReason;
}

/** Handlers that can be passed when subscribing (the same as calling `on(...)`). */
export interface SubscriptionHandlers<T extends MessageData = MessageData> {
  /** Every event, whatever its name. */
  onMessage?: (message: FanoutMessage<T>) => void;
  onProgress?: (message: FanoutMessage<T>) => void;
  onComplete?: (message: FanoutMessage<T>) => void;
  onFailed?: (message: FanoutMessage<T>) => void;
  onReset?: (reset: ResetInfo) => void;
  onError?: (error: FanoutErrorInfo) => void;
  onState?: (state: ConnectionState) => void;
  onEnd?: (end: EndInfo) => void;
}

export interface SubscriptionStats {
  messages: number;
  duplicates: number;
  resets: number;
  catchUps: number;
  /** The last position delivered per topic (`<epoch>:<offset>`), '' before any. */
  positions: Record<string, string>;
}

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  readonly state: ConnectionState;
  /** An immediate poll of one topic (with the client's own key). */
  fetchSince(topic: string, after: Start): Promise<PollAnswer>;
  /** The subscription stopped following `topic` (or, without one, ended or was closed): forget it there. */
  release(sub: Subscription<MessageData>, topic?: string): void;
  /** Counters shared by every subscription of the client. */
  count(what: 'messages' | 'duplicates' | 'resets' | 'catchUps'): void;
}

interface Track {
  readonly topic: string;
  pos: Start;
  catching: boolean;
  held: { message: FanoutMessage; position: Position | undefined }[];
  /** Held events were dropped (too many): fill again once the current catch-up is done. */
  overflowed: boolean;
}

export class Subscription<T extends MessageData = MessageData> {
  private readonly tracks = new Map<string, Track>();
  private readonly emitter = new Emitter<Record<string, unknown>>();
  private isClosed = false;
  private readonly statsValue: Omit<SubscriptionStats, 'positions'> = { messages: 0, duplicates: 0, resets: 0, catchUps: 0 };

  constructor(
    private readonly host: SubscriptionHost,
    /** The key each topic is deduplicated and reference-counted by in the client (`<user>:<topic>`). */
    readonly key: (topic: string) => string,
    starts: ReadonlyMap<string, Start>,
    /** End after a content item's final event (a `progress()` subscription). */
    private readonly endOnFinal: boolean,
    handlers: SubscriptionHandlers<T> = {},
  ) {
    for (const [topic, start] of starts) this.track(topic, start);
    if (handlers.onMessage) this.on('message', handlers.onMessage);
    if (handlers.onProgress) this.on('progress', handlers.onProgress);
    if (handlers.onComplete) this.on('complete', handlers.onComplete);
    if (handlers.onFailed) this.on('failed', handlers.onFailed);
    if (handlers.onReset) this.on('reset', handlers.onReset);
    if (handlers.onError) this.on('error', handlers.onError);
    if (handlers.onState) this.on('state', handlers.onState);
    if (handlers.onEnd) this.on('end', handlers.onEnd);
  }

  /** The connection's state, or `closed` once this subscription ended. */
  get state(): ConnectionState {
    return this.isClosed ? 'closed' : this.host.state;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get topics(): string[] {
    return [...this.tracks.keys()];
  }

  get stats(): SubscriptionStats {
    const positions: Record<string, string> = {};
    for (const t of this.tracks.values()) positions[t.topic] = typeof t.pos === 'object' ? formatPosition(t.pos) : '';
    return { ...this.statsValue, positions };
  }

  /** Follows one more topic from `start` (the client registers it). */
  track(topic: string, start: Start): void {
    if (!this.tracks.has(topic)) this.tracks.set(topic, { topic, pos: start, catching: false, held: [], overflowed: false });
  }

  /** Where this subscription would resume each topic (what it tells a new cross-tab leader). */
  position(topic: string): Start | undefined {
    return this.tracks.get(topic)?.pos;
  }

  on(event: 'reset', listener: (reset: ResetInfo) => void): () => void;
  on(event: 'error', listener: (error: FanoutErrorInfo) => void): () => void;
  on(event: 'state', listener: (state: ConnectionState) => void): () => void;
  on(event: 'end', listener: (end: EndInfo) => void): () => void;
  /** `message` for every event, or an event name (`progress`, `complete`, `failed`, …). */
  on(event: string, listener: (message: FanoutMessage<T>) => void): () => void;
  on(event: string, listener: (value: never) => void): () => void {
    return this.emitter.on(event, listener as (value: unknown) => void);
  }

  /** Stops this subscription; the connection drops its topics when nothing else follows them. */
  close(): void {
    this.finish(undefined, 'closed');
  }

  // ---- called by the client's dispatcher ----

  deliver(message: FanoutMessage, position: Position | undefined): void {
    const track = this.tracks.get(message.topic);
    if (!track || this.isClosed) return;
    if (track.catching) return this.hold(track, message, position);
    this.apply(track, message, position);
  }

  checkpoint(topic: string, at: Position): void {
    const track = this.tracks.get(topic);
    if (!track || this.isClosed || track.catching) return;
    const pos = track.pos;
    if (pos === 'now') return this.settle(track, at);
    if (pos === 'start' && at.offset === 0) {
      track.pos = at;
      return;
    }
    if (pos === 'start' || pos.epoch !== at.epoch || pos.offset < at.offset) void this.catchUp(track);
  }

  reset(reset: ResetInfo): void {
    const track = this.tracks.get(reset.topic);
    if (!track || this.isClosed || track.catching) return;
    const pos = track.pos;
    // Already at or past where the stream continues: nothing was lost for this subscriber.
    if (typeof pos === 'object' && pos.epoch === reset.position.epoch && pos.offset >= reset.position.offset) return;
    if (pos === 'now') return this.settle(track, reset.position);
    // The reset answered someone's position, maybe not ours: ask for ours (the server
    // replays it, or answers the reset that applies to us).
    void this.catchUp(track);
  }

  /** The connection dropped this topic: the server refused it, or it ended (204). */
  dropTopic(topic: string, reason: 'refused' | 'ended', error?: FanoutErrorInfo): void {
    if (!this.tracks.has(topic) || this.isClosed) return;
    if (error) this.emit('error', error);
    this.untrack(topic);
    this.emit('end', { topic, reason });
    if (this.tracks.size === 0) this.finish(undefined, reason, false);
  }

  stateChanged(state: ConnectionState): void {
    if (!this.isClosed) this.emit('state', state);
  }

  errorReported(error: FanoutErrorInfo): void {
    if (!this.isClosed) this.emit('error', error);
  }

  /** Adopts a live topic's current position (a subscription joining a topic the connection already follows). */
  joinLive(topic: string, current: Position): void {
    const track = this.tracks.get(topic);
    if (!track || track.catching) return;
    if (track.pos === 'now') this.settle(track, current);
    else this.checkpoint(topic, current);
  }

  // ---- internals ----

  private untrack(topic: string): void {
    this.tracks.delete(topic);
    this.host.release(this.asAny(), topic);
  }

  private asAny(): Subscription<MessageData> {
    return this as unknown as Subscription<MessageData>;
  }

  private hold(track: Track, message: FanoutMessage, position: Position | undefined): void {
    if (track.held.length >= MAX_HELD) {
      track.held = [];
      track.overflowed = true;
      return;
    }
    track.held.push({ message, position });
  }

  /**
   * A `now` subscription learns where "now" is (a checkpoint, a reset, the live position
   * of a topic it joined): events held until then that are at or before it were replays
   * for someone else and are dropped; later ones are delivered.
   */
  private settle(track: Track, at: Position): void {
    track.pos = at;
    this.drainHeld(track);
  }

  /** Applies one event in order: deliver, drop as a duplicate, hold it, or start filling a gap. */
  private apply(track: Track, message: FanoutMessage, position: Position | undefined): void {
    const verdict = this.relation(track.pos, position);
    if (verdict === 'wait') return this.hold(track, message, position);
    if (verdict === 'duplicate') {
      this.statsValue.duplicates++;
      this.host.count('duplicates');
      return;
    }
    if (verdict === 'gap') {
      this.hold(track, message, position);
      void this.catchUp(track);
      return;
    }
    if (position) track.pos = position;
    this.emitMessage(track, message);
  }

  private relation(pos: Start, p: Position | undefined): 'next' | 'duplicate' | 'gap' | 'wait' {
    if (!p) return 'next'; // not retained: no position to order by
    // Before the connection says where "now" is, an event may be a replay for another subscriber.
    if (pos === 'now') return 'wait';
    if (pos === 'start') return p.offset === 1 ? 'next' : 'gap';
    if (pos.epoch !== p.epoch) return 'gap';
    if (p.offset <= pos.offset) return 'duplicate';
    return p.offset === pos.offset + 1 ? 'next' : 'gap';
  }

  private emitMessage(track: Track, message: FanoutMessage): void {
    this.statsValue.messages++;
    this.host.count('messages');
    this.emit('message', message);
    this.emit(message.event, message);
    if (this.endOnFinal && FINAL_EVENTS.has(message.event) && track.topic.startsWith('content:')) {
      this.untrack(track.topic);
      this.emit('end', { topic: track.topic, reason: message.event as EndReason });
      if (this.tracks.size === 0) this.finish(undefined, message.event as EndReason, false);
    }
  }

  private applyReset(track: Track, reset: ResetInfo): void {
    track.pos = reset.position;
    this.statsValue.resets++;
    this.host.count('resets');
    this.emit('reset', reset);
  }

  /**
   * Fills the gap after `track.pos` with immediate polls until the server has nothing
   * more, then applies the events held meanwhile (dropping what the polls already gave).
   */
  private async catchUp(track: Track): Promise<void> {
    if (track.catching) return;
    track.catching = true;
    this.statsValue.catchUps++;
    this.host.count('catchUps');
    const backoff = new Backoff({ initialMs: 250, maxMs: 10_000 });
    try {
      for (;;) {
        if (this.isClosed || !this.tracks.has(track.topic)) return;
        let answer: PollAnswer;
        try {
          answer = await this.host.fetchSince(track.topic, track.pos);
        } catch (err) {
          if (err instanceof FanoutHttpError && err.status !== 401 && err.status !== 429 && err.status >= 400 && err.status < 500) {
            this.dropTopic(track.topic, 'refused', { code: err.code, message: err.message, status: err.status, topic: track.topic, fatal: true });
            return;
          }
          await new Promise((r) => setTimeout(r, backoff.next()));
          continue;
        }
        if (this.isClosed || !this.tracks.has(track.topic)) return;
        for (const ev of answer.events) {
          if (!this.tracks.has(track.topic)) return;
          const position = parsePosition(ev.id);
          if (ev.event === 'reset') {
            const reset = toResetInfo(ev.data, position);
            if (reset) this.applyReset(track, reset);
            continue;
          }
          const verdict = this.relation(track.pos, position);
          if (verdict === 'duplicate') continue;
          if (position) track.pos = position;
          this.emitMessage(track, toMessage(ev.event, ev.data, position));
        }
        if (!answer.more && !track.overflowed) break;
        track.overflowed = false;
      }
    } finally {
      track.catching = false;
    }
    this.drainHeld(track);
  }

  /** Applies the events held while filling a gap (or waiting to learn where "now" is). */
  private drainHeld(track: Track): void {
    const held = track.held;
    track.held = [];
    for (let i = 0; i < held.length; i++) {
      if (this.isClosed || !this.tracks.has(track.topic)) return;
      if (track.catching || track.pos === 'now') {
        // A held event revealed another gap: keep the rest for after that catch-up.
        track.held.push(...held.slice(i));
        return;
      }
      this.apply(track, held[i]!.message, held[i]!.position);
    }
  }

  private finish(topic: string | undefined, reason: EndReason, announce = true): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.host.release(this.asAny());
    if (announce && reason !== 'closed') this.emit('end', { topic, reason });
    this.emit('state', 'closed');
    this.emitter.clear();
  }

  private emit(event: string, value: unknown): void {
    this.emitter.emit(event, value);
  }
}
