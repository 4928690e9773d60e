// Cross-tab sharing: the tabs of one origin (and one user) hold ONE connection between
// them. One tab is the leader: it runs the `Source` for the union of every tab's topics
// and posts what arrives on a BroadcastChannel; the others (followers) apply those events
// to their own subscriptions, which keep their own positions (subscription.ts), so a
// follower drops what it has seen and fills any gap itself.
//
// Election:
// - Web Locks (`navigator.locks`): every tab queues for one exclusive lock; the holder
//   leads until its tab closes (the browser releases the lock, even on a crash) and the
//   next tab in the queue is granted it. Each tab also holds a lock of its own, so the
//   leader can see which tabs are still alive (`locks.query()`) and drop the topics of
//   tabs that vanished without saying goodbye.
// - BroadcastChannel only (browsers without Web Locks): the leader posts a heartbeat;
//   when it stops for three periods (or the leader says `resign` as its tab hides),
//   followers claim, and the lowest random rank among the claims of one window wins. Two
//   leaders at once (a partition healing) resolve to the lower rank; meanwhile both
//   deliver and the subscriptions drop the duplicates.
//
// Hand-over without loss: every tab posts its wants (topics with the position each needs)
// whenever they change, and again with fresh positions when a new leader announces itself.
// The new leader waits `handoverMs` for those before connecting and resumes each topic
// from the earliest position any tab needs, so its replay covers every follower.
import { addStats, type Coordinator } from './coordinator.js';
import { earlierStart, type Position, type Start } from './position.js';
import type { Source, SourceEvents, SourceStats } from './source.js';
import type { ConnectionState, FanoutErrorInfo, FanoutMessage, ResetInfo } from './types.js';

export interface TabGroupOptions {
  /** Channel and lock names derive from it: one group per gateway URL and user. */
  name: string;
  election: 'locks' | 'broadcast';
  /** BroadcastChannel election: the leader's heartbeat period. */
  heartbeatMs: number;
  /** A new leader waits this long for the other tabs' positions before connecting. */
  handoverMs: number;
  /** Web Locks election: how often the leader drops the wants of tabs that are gone. */
  pruneMs: number;
  /** Builds this tab's source when it becomes leader. */
  source(startDelayMs: number, events: SourceEvents): Source;
  /** This tab's dispatcher. */
  events: SourceEvents;
  /** This tab's wants with its subscriptions' current positions. */
  wants(): ReadonlyMap<string, Start>;
}

type SourceEvent =
  | { k: 'message'; m: FanoutMessage; p: Position | undefined }
  | { k: 'checkpoint'; positions: [string, Position][] }
  | { k: 'reset'; info: ResetInfo }
  | { k: 'refused'; topic: string; error: FanoutErrorInfo }
  | { k: 'ended'; topic: string }
  | { k: 'state'; state: ConnectionState }
  | { k: 'error'; error: FanoutErrorInfo };

type TabMessage =
  | { t: 'hello'; from: string }
  | { t: 'want'; from: string; topics: [string, Start][] }
  | { t: 'bye'; from: string }
  | { t: 'leader'; from: string; rank: number; state: ConnectionState }
  | { t: 'beat'; from: string; rank: number; state: ConnectionState }
  | { t: 'claim'; from: string; rank: number }
  | { t: 'resign'; from: string }
  | { t: 'ev'; from: string; ev: SourceEvent };

/** Whether this runtime can share a connection between tabs, and how it would elect. */
export function sharingSupport(): 'locks' | 'broadcast' | undefined {
  if (typeof BroadcastChannel === 'undefined' || typeof document === 'undefined') return undefined;
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  return locks && typeof locks.request === 'function' ? 'locks' : 'broadcast';
}

function randomId(): string {
  const bytes = new Uint8Array(9);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(36).padStart(2, '0')).join('');
}

export class TabGroup implements Coordinator {
  readonly tabId = randomId();
  private readonly rank = Math.random();
  private readonly channel: BroadcastChannel;
  private readonly wantsByTab = new Map<string, ReadonlyMap<string, Start>>();
  private roleValue: 'leader' | 'follower' = 'follower';
  private source: Source | undefined;
  private pastStats: SourceStats = { connects: 0, opens: 0, polls: 0, fallbacks: 0, restores: 0 };
  private closed = false;
  private readonly abort = new AbortController();
  private releaseLeader: (() => void) | undefined;
  private releaseTab: (() => void) | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastBeat: number;
  private claims: Map<string, number> | undefined;
  /** The tab last heard announcing itself as leader. */
  private leaderTab: string | undefined;
  private readonly onPageHide = (): void => this.close();
  /** Leader changes seen by this tab (becoming leader, stepping down): for tests and stats. */
  leaderships = 0;

  constructor(private readonly options: TabGroupOptions) {
    this.channel = new BroadcastChannel(`fanout:${options.name}`);
    this.channel.onmessage = (e: MessageEvent<TabMessage>) => this.receive(e.data);
    this.wantsByTab.set(this.tabId, options.wants());
    // Until a leader speaks, give it a moment: an existing leader answers `hello` at once.
    this.lastBeat = Date.now() - 3 * options.heartbeatMs + Math.min(300, options.heartbeatMs);
    if (typeof addEventListener === 'function') addEventListener('pagehide', this.onPageHide);
    this.post({ t: 'hello', from: this.tabId });
    this.postWant();
    if (options.election === 'locks') this.electWithLocks();
    else this.timer = setInterval(() => this.tick(), Math.max(50, Math.floor(options.heartbeatMs / 2)));
  }

  get role(): 'leader' | 'follower' {
    return this.roleValue;
  }

  get transport(): 'sse' | 'poll' | 'shared' | 'none' {
    if (this.roleValue === 'follower') return 'shared';
    return this.source && this.source.cursor().size > 0 ? this.source.transport : 'none';
  }

  get sourceStats(): SourceStats {
    return this.source ? addStats(this.pastStats, this.source.stats) : { ...this.pastStats };
  }

  want(topics: ReadonlyMap<string, Start>): void {
    if (this.closed) return;
    this.wantsByTab.set(this.tabId, topics);
    this.postWant(topics);
    if (this.roleValue === 'leader') this.recompute();
  }

  close(): void {
    if (this.closed) return;
    if (this.roleValue === 'leader') this.post({ t: 'resign', from: this.tabId });
    this.post({ t: 'bye', from: this.tabId });
    this.closed = true;
    this.stepDown();
    this.abort.abort();
    this.releaseLeader?.();
    this.releaseTab?.();
    if (this.timer !== undefined) clearInterval(this.timer);
    if (typeof removeEventListener === 'function') removeEventListener('pagehide', this.onPageHide);
    this.channel.close();
  }

  // ---- election ----

  private electWithLocks(): void {
    const locks = navigator.locks;
    const signal = this.abort.signal;
    locks
      .request(`fanout-tab:${this.options.name}:${this.tabId}`, { signal }, () => new Promise<void>((resolve) => (this.releaseTab = resolve)))
      .catch(() => undefined);
    locks
      .request(`fanout-leader:${this.options.name}`, { signal }, async () => {
        if (this.closed) return;
        this.becomeLeader();
        await new Promise<void>((resolve) => (this.releaseLeader = resolve));
      })
      .catch(() => undefined);
    this.timer = setInterval(() => void this.prune(), this.options.pruneMs);
  }

  /** Web Locks: forget the wants of tabs whose own lock is no longer held (closed or crashed). */
  private async prune(): Promise<void> {
    if (this.roleValue !== 'leader') return;
    const state = await navigator.locks.query();
    const alive = new Set((state.held ?? []).map((l) => l.name));
    let changed = false;
    for (const tab of this.wantsByTab.keys()) {
      if (tab !== this.tabId && !alive.has(`fanout-tab:${this.options.name}:${tab}`)) {
        this.wantsByTab.delete(tab);
        changed = true;
      }
    }
    if (changed) this.recompute();
  }

  /** BroadcastChannel election: heartbeat as leader, claim when the leader has gone quiet. */
  private tick(): void {
    if (this.closed) return;
    const now = Date.now();
    if (this.roleValue === 'leader') {
      this.post({ t: 'beat', from: this.tabId, rank: this.rank, state: this.source?.state ?? 'idle' });
      return;
    }
    if (!this.claims && now - this.lastBeat > 3 * this.options.heartbeatMs) this.claim();
  }

  /** Starts a claim window (counting a rival's claim that started it, if any). */
  private claim(rival?: string, rivalRank?: number): void {
    this.claims = new Map([[this.tabId, this.rank]]);
    if (rival !== undefined && rivalRank !== undefined) this.claims.set(rival, rivalRank);
    this.post({ t: 'claim', from: this.tabId, rank: this.rank });
    const started = Date.now();
    setTimeout(() => {
      const claims = this.claims;
      this.claims = undefined;
      if (!claims || this.closed || this.roleValue === 'leader') return;
      if (this.lastBeat >= started) return; // a leader spoke up meanwhile
      let best: [string, number] | undefined;
      for (const entry of claims) if (!best || entry[1] < best[1] || (entry[1] === best[1] && entry[0] < best[0])) best = entry;
      if (best && best[0] === this.tabId) this.becomeLeader();
      else this.lastBeat = Date.now(); // give the winner a full period to start beating
    }, Math.max(100, Math.floor(this.options.heartbeatMs / 2)));
  }

  private becomeLeader(): void {
    if (this.closed || this.roleValue === 'leader') return;
    this.roleValue = 'leader';
    this.leaderships++;
    const events = this.options.events;
    const post = (ev: SourceEvent): void => this.post({ t: 'ev', from: this.tabId, ev });
    const tap: SourceEvents = {
      message: (m, p) => {
        events.message(m, p);
        post({ k: 'message', m, p });
      },
      checkpoint: (positions) => {
        events.checkpoint(positions);
        post({ k: 'checkpoint', positions: [...positions] });
      },
      reset: (info) => {
        events.reset(info);
        post({ k: 'reset', info });
      },
      refused: (topic, error) => {
        events.refused(topic, error);
        post({ k: 'refused', topic, error });
      },
      ended: (topic) => {
        events.ended(topic);
        post({ k: 'ended', topic });
      },
      state: (state) => {
        events.state(state);
        post({ k: 'state', state });
      },
      error: (error) => {
        events.error(error);
        post({ k: 'error', error });
      },
    };
    this.wantsByTab.set(this.tabId, this.options.wants());
    // The previous leader is gone (its lock was released, or it stopped beating): its wants too.
    if (this.leaderTab !== undefined) this.wantsByTab.delete(this.leaderTab);
    this.source = this.options.source(this.options.handoverMs, tap);
    tap.state('reconnecting');
    this.post({ t: 'leader', from: this.tabId, rank: this.rank, state: 'reconnecting' });
    this.recompute();
    if (this.options.election === 'locks') void this.prune();
  }

  private stepDown(): void {
    if (this.source) {
      this.pastStats = addStats(this.pastStats, this.source.stats);
      this.source.close();
      this.source = undefined;
    }
    this.roleValue = 'follower';
  }

  /** The union of every tab's wants, each topic from the earliest position any tab needs. */
  private recompute(): void {
    if (!this.source) return;
    const union = new Map<string, Start>();
    for (const wants of this.wantsByTab.values()) {
      for (const [topic, start] of wants) {
        const existing = union.get(topic);
        union.set(topic, existing === undefined ? start : earlierStart(existing, start));
      }
    }
    this.source.setTopics(union);
  }

  // ---- messages ----

  private post(message: TabMessage): void {
    if (this.closed) return;
    try {
      this.channel.postMessage(message);
    } catch (err) {
      console.error('fanout client: could not post to the other tabs', err);
    }
  }

  private postWant(topics: ReadonlyMap<string, Start> = this.options.wants()): void {
    this.post({ t: 'want', from: this.tabId, topics: [...topics] });
  }

  private receive(msg: TabMessage): void {
    if (this.closed || !msg || typeof msg !== 'object' || msg.from === this.tabId) return;
    switch (msg.t) {
      case 'hello':
        if (this.roleValue === 'leader') this.post({ t: 'leader', from: this.tabId, rank: this.rank, state: this.source?.state ?? 'idle' });
        return;
      case 'want': {
        this.wantsByTab.set(msg.from, new Map(msg.topics));
        if (this.roleValue !== 'leader') return;
        this.recompute();
        // Tell the tab where the live topics stand, so a subscription there that starts
        // `now` knows where now is, and one that is behind fills its gap at once.
        const confirmed = this.source?.confirmedPositions();
        if (confirmed?.size) this.post({ t: 'ev', from: this.tabId, ev: { k: 'checkpoint', positions: [...confirmed] } });
        return;
      }
      case 'bye':
        this.wantsByTab.delete(msg.from);
        if (this.roleValue === 'leader') this.recompute();
        return;
      case 'leader':
      case 'beat':
        this.heardLeader(msg.from, msg.rank, msg.state, msg.t === 'leader');
        return;
      case 'claim':
        if (this.roleValue === 'leader') this.post({ t: 'leader', from: this.tabId, rank: this.rank, state: this.source?.state ?? 'idle' });
        else if (this.claims) this.claims.set(msg.from, msg.rank);
        else if (this.options.election === 'broadcast' && Date.now() - this.lastBeat > 3 * this.options.heartbeatMs) this.claim(msg.from, msg.rank);
        return;
      case 'resign':
        this.wantsByTab.delete(msg.from);
        if (this.roleValue === 'follower') {
          this.options.events.state('reconnecting');
          if (this.options.election === 'broadcast' && !this.claims) this.claim();
        }
        return;
      case 'ev':
        if (this.roleValue === 'follower') this.apply(msg.ev);
        return;
    }
  }

  private heardLeader(from: string, rank: number, state: ConnectionState, announced: boolean): void {
    if (this.roleValue === 'leader') {
      // Two leaders (BroadcastChannel election after a partition): the lower rank stays.
      if (rank < this.rank || (rank === this.rank && from < this.tabId)) {
        this.stepDown();
        this.options.events.state(state);
      } else {
        this.post({ t: 'leader', from: this.tabId, rank: this.rank, state: this.source?.state ?? 'idle' });
      }
      return;
    }
    this.lastBeat = Date.now();
    this.claims = undefined;
    this.leaderTab = from;
    if (announced) {
      // A new leader: tell it where this tab's subscriptions are, so it resumes early enough for them.
      this.postWant();
      this.options.events.state(state);
    }
  }

  private apply(ev: SourceEvent): void {
    const events = this.options.events;
    switch (ev.k) {
      case 'message':
        return events.message(ev.m, ev.p);
      case 'checkpoint':
        return events.checkpoint(new Map(ev.positions));
      case 'reset':
        return events.reset(ev.info);
      case 'refused':
        return events.refused(ev.topic, ev.error);
      case 'ended':
        return events.ended(ev.topic);
      case 'state':
        return events.state(ev.state);
      case 'error':
        return events.error(ev.error);
    }
  }
}
