// FanoutClient: the app-facing API.
//
//   const fanout = new FanoutClient({ url: 'https://gw.example.com', getToken: () => session.accessToken });
//   const job = fanout.progress(contentId, { onProgress: (m) => bar(m.data.progress), onComplete: done });
//   fanout.userProgress();                       // every progress event of the signed-in user
//   fanout.subscribe(['content:a', 'user:bob']); // any topics the key may read
//
// Every subscription of a client (and, in a browser, of every tab of the same user) goes
// through one connection. Subscriptions are deduplicated by key — the seed's
// `userId:contentId`, here `<user>:<topic>` — and reference-counted: two components asking
// for the same item share its topic; the topic leaves the connection when the last one
// closes. The client is the dispatcher between the connection (or the cross-tab leader)
// and the subscriptions.
import { Emitter } from './emitter.js';
import { LocalCoordinator, type Coordinator } from './coordinator.js';
import { TabGroup, sharingSupport } from './cross-tab.js';
import { errorMessage, tokenClaims, type FetchLike, type TokenSource } from './http.js';
import { earlierStart, parsePosition, type Position, type Start } from './position.js';
import { Source, type SourceEvents } from './source.js';
import { Subscription, type SubscriptionHandlers, type SubscriptionHost } from './subscription.js';
import { DEFAULT_TIMING, type SourceTiming } from './timing.js';
import type { ConnectionState, ConnectionStats, FanoutErrorInfo, From, MessageData, ProgressData } from './types.js';
import { fetchSince, type PollAnswer } from './wire.js';

export interface ShareOptions {
  /** Tabs share a connection only within one group; defaults to the key's user (JWT `sub`). */
  key?: string;
  /** `auto`: Web Locks where available, else a BroadcastChannel election. */
  election?: 'auto' | 'locks' | 'broadcast';
  /** BroadcastChannel election: leader heartbeat period (ms). */
  heartbeatMs?: number;
  /** A new leader waits this long (ms) for the other tabs' positions before connecting. */
  handoverMs?: number;
  /** Web Locks election: how often (ms) the leader forgets tabs that closed without a goodbye. */
  pruneMs?: number;
}

export interface FanoutClientOptions {
  /** Gateway URL, e.g. `https://gw.example.com`. In a browser it defaults to the page's origin. */
  url?: string;
  /** A fixed key (a user's JWT, or anon / service_role). */
  apiKey?: string;
  /** Called before every connect and poll; return a fresh key (e.g. your auth library's current access token). */
  getToken?: TokenSource;
  /** Share one connection between the tabs of a browser (default: on where BroadcastChannel exists). */
  share?: boolean | ShareOptions;
  /** `auto` (SSE, long-poll when SSE fails or is buffered), or force `sse` / `poll`. */
  transport?: 'auto' | 'sse' | 'poll';
  /** Timeouts and back-off; see `SourceTiming`. */
  timing?: Partial<SourceTiming>;
  /** A fetch implementation (default: the global one). */
  fetch?: FetchLike;
}

export interface SubscribeOptions {
  /** Where to start: `start` (the retained history), `now`, or a position `<epoch>:<offset>` seen before. */
  from?: From;
}

export interface ClientEvents {
  state: ConnectionState;
  error: FanoutErrorInfo;
}

function toStart(from: From | undefined, fallback: Start): Start {
  if (from === undefined) return fallback;
  if (from === 'start' || from === 'now') return from;
  const p = parsePosition(from);
  if (!p) throw new TypeError(`from ${JSON.stringify(from)} must be "start", "now" or a position "<epoch>:<offset>"`);
  return p;
}

function defaultUrl(): string {
  const loc = (globalThis as { location?: { origin?: string } }).location;
  if (loc?.origin && loc.origin !== 'null') return loc.origin;
  throw new TypeError('FanoutClient needs { url } outside a browser page');
}

export class FanoutClient {
  private readonly url: string;
  private readonly token: TokenSource;
  private readonly fetcher: FetchLike;
  private readonly timing: SourceTiming;
  private readonly emitter = new Emitter<ClientEvents>();
  /** topic → the subscriptions following it (the reference count is the set's size). */
  private readonly byTopic = new Map<string, Set<Subscription<MessageData>>>();
  /** The last position the connection reported per topic, for subscriptions joining a live topic. */
  private readonly last = new Map<string, Position>();
  private readonly counters = { messages: 0, duplicates: 0, resets: 0, catchUps: 0, polls: 0 };
  private coordinator: Coordinator | undefined;
  private readonly init: Promise<void>;
  private identity: string | undefined;
  private stateValue: ConnectionState = 'idle';
  private isClosed = false;
  private wantScheduled = false;
  private readonly host: SubscriptionHost;

  constructor(private readonly options: FanoutClientOptions = {}) {
    if (!options.apiKey && !options.getToken) throw new TypeError('FanoutClient needs { apiKey } or { getToken }');
    this.url = (options.url ?? defaultUrl()).replace(/\/+$/, '');
    const apiKey = options.apiKey;
    this.token = options.getToken ?? (() => apiKey!);
    const globalFetch = globalThis.fetch;
    this.fetcher = options.fetch ?? ((input, init) => globalFetch(input, init));
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    const state = (): ConnectionState => this.stateValue;
    this.host = {
      get state() {
        return state();
      },
      fetchSince: (topic, after) => this.fetchSince(topic, after),
      release: (sub, topic) => this.release(sub, topic),
      count: (what) => void this.counters[what]++,
    };
    this.init = this.start();
  }

  /** The connection's state (`idle` while nothing is subscribed). */
  get state(): ConnectionState {
    return this.stateValue;
  }

  get stats(): ConnectionStats {
    const c = this.coordinator;
    const s = c?.sourceStats ?? { connects: 0, opens: 0, polls: 0, fallbacks: 0, restores: 0 };
    const subscriptions = this.allSubscriptions().size;
    return {
      transport: c?.transport ?? 'none',
      role: c?.role ?? 'single',
      connects: s.connects,
      opens: s.opens,
      polls: s.polls + this.counters.polls,
      fallbacks: s.fallbacks,
      restores: s.restores,
      messages: this.counters.messages,
      duplicates: this.counters.duplicates,
      resets: this.counters.resets,
      catchUps: this.counters.catchUps,
      topics: this.byTopic.size,
      subscriptions,
    };
  }

  /** Subscription keys (`<user>:<topic>`) with how many subscriptions share each. */
  subscriptionKeys(): { key: string; refs: number }[] {
    return [...this.byTopic].map(([topic, subs]) => ({ key: `${this.identity ?? '?'}:${topic}`, refs: subs.size }));
  }

  /** Resolves once the client knows its user and has set up its connection (or tab group). */
  ready(): Promise<void> {
    return this.init;
  }

  on<K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void): () => void {
    return this.emitter.on(event, listener);
  }

  /**
   * A content item's progress: from the start of its retained history (so a late page
   * still draws the bar where it is), ending after `complete` or `failed`.
   */
  progress(contentId: string, handlers?: SubscriptionHandlers<ProgressData>, options: SubscribeOptions = {}): Subscription<ProgressData> {
    return this.add<ProgressData>([`content:${contentId}`], toStart(options.from, 'start'), true, handlers);
  }

  /** Every progress event of a user's content (default: the key's own user), from now on. */
  userProgress(userId?: string, handlers?: SubscriptionHandlers<ProgressData>, options: SubscribeOptions = {}): Subscription<ProgressData> {
    const start = toStart(options.from, 'now');
    if (userId !== undefined) return this.add<ProgressData>([`user:${userId}`], start, false, handlers);
    const sub = this.add<ProgressData>([], start, false, handlers);
    void this.init.then(() => {
      if (sub.closed || this.isClosed) return;
      if (!this.identity || this.identity === 'anon' || this.identity === 'service_role') {
        sub.errorReported({ code: 'no_user', message: 'this key has no user (JWT sub): pass the userId to userProgress()', fatal: true });
        sub.close();
        return;
      }
      this.attach(sub, `user:${this.identity}`, start);
    });
    return sub;
  }

  /** Any topics the key may read (`content:<id>`, `user:<id>`), from now on unless `from` says otherwise. */
  subscribe<T extends MessageData = MessageData>(topics: string[], handlers?: SubscriptionHandlers<T>, options: SubscribeOptions = {}): Subscription<T> {
    if (topics.length === 0) throw new TypeError('subscribe() needs at least one topic');
    return this.add<T>([...new Set(topics)], toStart(options.from, 'now'), false, handlers);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const sub of this.allSubscriptions()) sub.close();
    this.coordinator?.close();
    this.setState('closed');
    this.emitter.clear();
  }

  // ---- setup ----

  private async start(): Promise<void> {
    let identity = 'anonymous';
    try {
      const claims = tokenClaims(await this.token());
      identity = claims.sub ?? claims.role ?? identity;
    } catch (err) {
      this.emitter.emit('error', { code: 'token_error', message: `getToken() failed: ${errorMessage(err)}`, fatal: false });
    }
    this.identity = identity;
    if (this.isClosed) return;
    const events = this.dispatcher();
    const sourceOptions = (startDelayMs: number) => ({ url: this.url, token: this.token, fetch: this.fetcher, transport: this.options.transport ?? 'auto', timing: this.timing, startDelayMs });
    const share = this.options.share ?? true;
    const support = sharingSupport();
    if (share !== false && support) {
      const opts: ShareOptions = share === true ? {} : share;
      const election = opts.election === 'locks' || opts.election === 'broadcast' ? opts.election : support;
      const base = new URL(this.url || '/', (globalThis as { location?: { href?: string } }).location?.href ?? 'http://localhost/').href;
      this.coordinator = new TabGroup({
        name: `${base}|${opts.key ?? identity}`,
        election,
        heartbeatMs: opts.heartbeatMs ?? 1000,
        handoverMs: opts.handoverMs ?? 150,
        pruneMs: opts.pruneMs ?? 5000,
        source: (delay, ev) => new Source(sourceOptions(delay), ev),
        events,
        wants: () => this.wants(),
      });
    } else {
      this.coordinator = new LocalCoordinator(sourceOptions(0), events);
    }
    this.coordinator.want(this.wants());
  }

  /** The client as the connection's listener: routes everything to the subscriptions. */
  private dispatcher(): SourceEvents {
    const subsOf = (topic: string): Subscription<MessageData>[] => [...(this.byTopic.get(topic) ?? [])];
    return {
      message: (m, p) => {
        if (p) this.last.set(m.topic, p);
        for (const sub of subsOf(m.topic)) sub.deliver(m, p);
      },
      checkpoint: (positions) => {
        for (const [topic, p] of positions) {
          this.last.set(topic, p);
          for (const sub of subsOf(topic)) sub.checkpoint(topic, p);
        }
      },
      reset: (info) => {
        this.last.set(info.topic, info.position);
        for (const sub of subsOf(info.topic)) sub.reset(info);
      },
      refused: (topic, error) => {
        this.last.delete(topic);
        for (const sub of subsOf(topic)) sub.dropTopic(topic, 'refused', error);
      },
      ended: (topic) => {
        for (const sub of subsOf(topic)) sub.dropTopic(topic, 'ended');
      },
      state: (state) => this.setState(state),
      error: (error) => {
        this.emitter.emit('error', error);
        for (const sub of this.allSubscriptions()) sub.errorReported(error);
      },
    };
  }

  private setState(state: ConnectionState): void {
    if (this.stateValue === state || (this.stateValue === 'closed' && state !== 'closed')) return;
    this.stateValue = state;
    this.emitter.emit('state', state);
    for (const sub of this.allSubscriptions()) sub.stateChanged(state);
  }

  private allSubscriptions(): Set<Subscription<MessageData>> {
    const all = new Set<Subscription<MessageData>>();
    for (const subs of this.byTopic.values()) for (const sub of subs) all.add(sub);
    return all;
  }

  // ---- subscriptions ----

  private add<T extends MessageData>(topics: string[], start: Start, endOnFinal: boolean, handlers: SubscriptionHandlers<T> | undefined): Subscription<T> {
    if (this.isClosed) throw new Error('this FanoutClient is closed');
    const sub = new Subscription<T>(this.host, (topic) => `${this.identity ?? '?'}:${topic}`, new Map(), endOnFinal, handlers);
    for (const topic of topics) this.attach(sub, topic, start);
    return sub;
  }

  /** Adds a topic to a subscription and to the reference-counted registry. */
  private attach<T extends MessageData>(sub: Subscription<T>, topic: string, start: Start): void {
    const s = sub as unknown as Subscription<MessageData>;
    s.track(topic, start);
    let subs = this.byTopic.get(topic);
    const isNew = !subs;
    if (!subs) this.byTopic.set(topic, (subs = new Set()));
    subs.add(s);
    const live = this.last.get(topic);
    if (!isNew && live) s.joinLive(topic, live);
    if (isNew) this.scheduleWant();
  }

  private release(sub: Subscription<MessageData>, topic?: string): void {
    const topics = topic === undefined ? [...this.byTopic.keys()] : [topic];
    let changed = false;
    for (const t of topics) {
      const subs = this.byTopic.get(t);
      if (!subs?.delete(sub)) continue;
      if (subs.size === 0) {
        this.byTopic.delete(t);
        this.last.delete(t);
        changed = true;
      }
    }
    if (changed) this.scheduleWant();
  }

  /** Each followed topic with the earliest position one of its subscriptions needs. */
  private wants(): Map<string, Start> {
    const out = new Map<string, Start>();
    for (const [topic, subs] of this.byTopic) {
      let start: Start | undefined;
      for (const sub of subs) {
        const pos = sub.position(topic);
        if (pos !== undefined) start = start === undefined ? pos : earlierStart(start, pos);
      }
      out.set(topic, start ?? 'now');
    }
    return out;
  }

  /** Tells the connection the new topic set once per turn, however many subscriptions changed. */
  private scheduleWant(): void {
    if (this.wantScheduled || this.isClosed) return;
    this.wantScheduled = true;
    queueMicrotask(() => {
      this.wantScheduled = false;
      if (!this.isClosed) this.coordinator?.want(this.wants());
    });
  }

  private async fetchSince(topic: string, after: Start): Promise<PollAnswer> {
    this.counters.polls++;
    return fetchSince(this.url, await this.token(), this.fetcher, topic, after);
  }
}
