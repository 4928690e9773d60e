// One joined Realtime channel on one socket (a Phoenix channel process in the real
// server): the join pipeline and its replies, broadcast with self/ack, presence,
// access_token refresh, private-channel permissions and the postgres_changes
// subscription. Messages for a channel are handled in order: while an asynchronous step
// runs (join, a permission lookup, a token check) later messages wait in a short backlog.
import { setTimeout as delay } from 'node:timers/promises';
import type { Claims } from '../core/auth.js';
import type { HubMessage, Subscriber } from '../core/hub.js';
import type { ChangeData, ChangeSubscription, ChangeSubscriptionResult, PostgresChangesParams, StoredBroadcast } from '../changes/types.js';
import { channelTopic, publishBroadcast, type BroadcastData } from './channel-topics.js';
import { BusUnavailableError } from '../bus/types.js';
import type { BroadcastPush, PhoenixMessage } from './codec.js';
import { backoff, identityLimitText, joinAuthReason } from './context.js';
import { bindingId, MAX_NAME_BYTES, parseJoinPayload, replayRequest, type JoinConfig } from './join-config.js';
import { WindowLimiter } from './limits.js';
import { changeFrame, PRESENCE_DIFF, replayFrame } from './wire.js';
import type { RealtimeSocket } from './socket.js';

export type ChannelInbound = { kind: 'message'; message: PhoenixMessage } | { kind: 'broadcast_push'; push: BroadcastPush };

type Pending = void | Promise<void>;

const NO_DATABASE = 'Realtime was unable to connect to the project database';

/** Messages a channel holds while an asynchronous step runs; beyond it the oldest are dropped. */
const MAX_BACKLOG = 100;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How often a `replication_ready` channel checks the change feed again. */
const REPLICATION_READY_CHECK_MS = 500;

/** A join refusal: the reason the client sees and the label it is counted under. */
class JoinRefused {
  constructor(
    readonly reason: string,
    readonly result: string,
    /** `ClientJoinRateLimitReached` also disconnects the socket (reference §2.4). */
    readonly disconnect = false,
  ) {}
}

export class Channel implements Subscriber {
  state: 'joining' | 'joined' | 'closed' = 'joining';
  /** The subtopic: `room1` for `realtime:room1`. */
  readonly sub: string;
  readonly config: JoinConfig;
  readonly hubTopic: string;
  token = '';
  claims: Claims | undefined;
  /** When the channel's token expires (ms since the epoch); the shared sweep enforces it. */
  tokenExpiresAt = Infinity;
  private presenceEnabled: boolean;
  private broadcastRead = true;
  private presenceRead = true;
  /** Write permissions on a private channel, looked up on first use and kept until the next token. */
  private broadcastWrite: boolean | undefined;
  private presenceWrite: boolean | undefined;
  private trackedJson: string | undefined;
  private bindings: { id: number; params: PostgresChangesParams }[] = [];
  /** Ids of the broadcasts replayed at join: a live copy of one of them is not sent again. */
  private replayedIds: Set<string> | undefined;
  private changes: ChangeSubscription | undefined;
  private readonly presenceCalls: WindowLimiter;
  private busy = false;
  private backlog: ChannelInbound[] | undefined;

  constructor(
    readonly socket: RealtimeSocket,
    /** The wire topic, `realtime:<sub>`. */
    readonly topic: string,
    readonly joinRef: string | null,
    payload: Record<string, unknown>,
  ) {
    this.sub = topic.slice('realtime:'.length);
    this.config = parseJoinPayload(payload, { maxBindings: socket.ctx.limits.maxBindingsPerJoin, maxPresenceKeyBytes: MAX_NAME_BYTES });
    this.hubTopic = channelTopic(this.sub, this.config.isPrivate);
    this.presenceEnabled = this.config.presenceEnabled;
    const { limits } = socket.ctx;
    this.presenceCalls = new WindowLimiter(limits.presenceMaxCalls, limits.presenceWindowMs);
  }

  /** A method, not a property check, so TypeScript does not narrow `state` across awaits. */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  get isPrivate(): boolean {
    return this.config.isPrivate;
  }

  // ---------------------------------------------------------------- join

  /** Runs the join pipeline (reference §2.3) and answers the join push with `ref`. */
  start(ref: string | null): void {
    this.run(this.join(ref));
  }

  private async join(ref: string | null): Promise<void> {
    const { gateway } = this.socket.ctx;
    let replay: StoredBroadcast[];
    try {
      await this.authorizeJoin();
      replay = await this.loadReplay();
    } catch (err) {
      if (err instanceof JoinRefused) return this.refuseJoin(err, ref);
      this.socket.ctx.log.error({ err, channel: this.sub }, 'channel join failed');
      return this.refuseJoin(new JoinRefused('Unknown Error on Channel', 'error'), ref);
    }
    if (this.state === 'closed') return; // replaced by a newer join or the socket closed meanwhile

    this.bindings = this.config.postgresChanges.map((params) => ({ id: bindingId(params), params }));
    let subscribed: ChangeSubscriptionResult | undefined;
    if (this.bindings.length && this.config.waitForChangesMs !== undefined) {
      // `postgres_changes_options.wait`: answer the join only once the feed has subscribed.
      try {
        subscribed = await this.awaitChanges(this.config.waitForChangesMs);
      } catch (err) {
        if (!(err instanceof JoinRefused)) throw err;
        return this.refuseJoin(err, ref);
      }
      if (this.isClosed()) return;
    }
    try {
      // Subscribed on the bus before "ok", so what another node publishes right after reaches this member.
      await gateway.hub.follow(this.hubTopic);
    } catch (err) {
      this.socket.ctx.log.warn({ err, channel: this.sub }, 'channel join refused: the bus is unavailable');
      return this.refuseJoin(new JoinRefused('Unable to subscribe to the channel: the gateway lost its connection to the cluster bus', 'error'), ref);
    }
    if (this.isClosed()) return;
    this.state = 'joined';
    this.socket.reply(this.joinRef, ref, this.topic, 'ok', { postgres_changes: this.bindings.map((b) => ({ ...b.params, id: b.id })) });
    gateway.hub.subscribe(this.hubTopic, this);
    gateway.metrics.channels.inc();
    gateway.metrics.joins.labels('ok').inc();
    this.sendReplay(replay);
    if (this.presenceEnabled && this.presenceRead) this.pushPresenceState();
    if (this.config.replicationReady) void this.notifyReplicationReady();
    if (this.bindings.length) {
      const claims = this.claims!;
      if (subscribed) this.adoptChanges(subscribed, claims);
      else void this.startChanges().then((result) => this.adoptChanges(result, claims));
    }
  }

  private async refuseJoin(err: JoinRefused, ref: string | null): Promise<void> {
    const { ctx } = this.socket;
    ctx.gateway.metrics.joins.labels(err.result).inc();
    ctx.error(err.result === 'rate_limited' ? 'rate_limit' : err.result === 'invalid_token' ? 'auth' : 'join');
    if (err.disconnect) {
      // A join flood: answer and disconnect at once, as Supabase disconnects at once. Waiting
      // out the back-off first would let the socket pile up joining channels meanwhile.
      this.socket.reply(this.joinRef, ref, this.topic, 'error', { reason: err.reason });
      this.release();
      this.socket.closeWith(1001, 'Too many joins per second');
      return;
    }
    // The real server sleeps before every join error so rejoin loops cannot hammer it.
    await backoff(ctx.limits.channelErrorBackoffMs);
    if (this.state !== 'closed') {
      this.socket.reply(this.joinRef, ref, this.topic, 'error', { reason: err.reason });
      this.release();
    }
  }

  /** Every check of the join pipeline in the real server's order; throws JoinRefused. */
  private async authorizeJoin(): Promise<void> {
    const { ctx } = this.socket;
    if (!this.sub) throw new JoinRefused('TopicNameRequired: You must provide a topic name', 'bad_request');
    if (this.config.problem) throw new JoinRefused(this.config.problem, 'bad_request');
    // Every join attempt spends from the socket's bucket, refused ones too, so refusals held
    // for the error back-off cannot pile up faster than the bucket allows.
    const socketJoins = this.socket.joinBucket;
    if (!socketJoins.take()) throw new JoinRefused(`ClientJoinRateLimitReached: Too many joins per second (per connection: ${socketJoins.describe()})`, 'rate_limited', true);
    if (this.socket.channels.size > ctx.limits.maxChannelsPerClient) throw new JoinRefused('ChannelRateLimitReached: Too many channels', 'channel_limit');
    const requested = this.config.accessToken;
    this.config.accessToken = undefined; // read once: the channel keeps the adopted token, not the payload's copy
    const claims = await this.adoptToken(requested && !requested.startsWith('sb_') ? requested : this.socket.token).catch((err: unknown) => {
      throw new JoinRefused(joinAuthReason(err), 'invalid_token');
    });
    // The join's token says who the client is (supabase-js connects with the anon key and
    // sends the user's token here): the socket now counts against that user's caps.
    const refused = this.socket.adoptIdentity(claims);
    if (refused) throw new JoinRefused(`ConnectionRateLimitReached: Too many connected users (${refused})`, 'rate_limited');
    const identity = this.socket.userKey;
    const identityJoins = ctx.identities.of(identity).joins;
    if (!identityJoins.take()) throw new JoinRefused(`ClientJoinRateLimitReached: Too many joins per second (${identityLimitText(identity, identityJoins)})`, 'rate_limited', true);
    // Gateway-wide last, so that only joins no identity limit refused spend the shared budget.
    if (!ctx.joins.take()) throw new JoinRefused(`ClientJoinRateLimitReached: Too many joins per second (gateway-wide: ${ctx.joins.describe()})`, 'rate_limited');
    if (this.isPrivate) {
      const denied = `Unauthorized: You do not have permissions to read from this Channel topic: ${this.sub}`;
      if (!(await this.evaluateReadPermissions(this.presenceEnabled))) throw new JoinRefused(denied, 'unauthorized');
      if (this.config.replay !== undefined && !this.broadcastRead) throw new JoinRefused(denied, 'unauthorized');
    } else if (this.config.replay !== undefined) {
      throw new JoinRefused('UnableToReplayMessages: Replay is not allowed for public channels', 'bad_request');
    }
  }

  /** The stored broadcasts a private channel's `broadcast.replay` asks for (reference §4.3); [] without one. */
  private async loadReplay(): Promise<StoredBroadcast[]> {
    if (!this.isPrivate) return [];
    const request = replayRequest(this.config.replay);
    if (request === undefined) return [];
    if (request === 'invalid') throw new JoinRefused('UnableToReplayMessages: Replay params are not valid', 'bad_request');
    const db = this.socket.ctx.gateway.database;
    if (!db) throw new JoinRefused(NO_DATABASE, 'error');
    try {
      return await db.archive.replay(this.sub, request.since, request.limit);
    } catch {
      throw new JoinRefused('UnableToReplayMessages: Realtime was unable to replay messages', 'error');
    }
  }

  /** Sends the replayed broadcasts, right after the join reply and before anything live, marked `replayed`. */
  private sendReplay(messages: StoredBroadcast[]): void {
    if (messages.length === 0) return;
    this.replayedIds = new Set(messages.map((m) => m.id));
    for (const m of messages) {
      const frame = replayFrame(this.socket.vsn, this.topic, m);
      if (frame) this.socket.sendFrame(frame.bytes, frame.binary);
    }
  }

  /**
   * `broadcast.replication_ready` (reference §6.1): a `system` "Replication connection
   * established" once the change feed is capturing (opening a lazily started database), or,
   * if it is not by the deadline, a shutdown saying so. Checked every 500 ms, as Supabase does.
   */
  private async notifyReplicationReady(): Promise<void> {
    const deadline = Date.now() + this.socket.ctx.limits.replicationReadyTimeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      const feed = this.socket.ctx.gateway.database?.changeFeed;
      const ready = feed ? await Promise.race([feed.connect().then(() => true, () => false), delay(Math.max(0, left), false, { ref: false })]) : false;
      if (this.state !== 'joined') return;
      if (ready) return this.pushSystem('system', 'ok', 'Replication connection established');
      if (Date.now() >= deadline) return this.shutdown('Replication connection was not established in time');
      await delay(Math.max(0, Math.min(REPLICATION_READY_CHECK_MS, deadline - Date.now())), undefined, { ref: false });
      if (this.state !== 'joined') return;
    }
  }

  /** Verifies `token` and makes it the channel's; throws the AuthError otherwise. */
  private async adoptToken(token: string): Promise<Claims> {
    const claims = await this.socket.ctx.gateway.auth.verify(token);
    // Usually the socket's own token again (realtime-js sends it with every join): keep one string.
    this.token = token === this.socket.token ? this.socket.token : token;
    this.claims = claims;
    this.tokenExpiresAt = claims.exp * 1000;
    return claims;
  }

  /**
   * Private channels: asks the database which reads the user's claims allow. False when
   * neither broadcast nor presence may be read (or there is no database to ask).
   */
  private async evaluateReadPermissions(presenceEnabled: boolean): Promise<boolean> {
    const db = this.socket.ctx.gateway.database;
    if (!db || !this.claims) {
      throw new JoinRefused(`UnableToConnectToProject: ${NO_DATABASE}`, 'unavailable');
    }
    let permissions;
    try {
      permissions = await db.authorizer.canRead(this.sub, this.claims, presenceEnabled);
    } catch (err) {
      this.socket.ctx.log.warn({ err, channel: this.sub }, 'private channel read authorization failed');
      throw new JoinRefused(NO_DATABASE, 'unavailable');
    }
    this.broadcastRead = permissions.broadcastRead;
    this.presenceRead = permissions.presenceRead;
    return permissions.broadcastRead || permissions.presenceRead;
  }

  private async writeAllowed(extension: 'broadcast' | 'presence'): Promise<boolean> {
    const db = this.socket.ctx.gateway.database;
    if (!db || !this.claims) return false;
    try {
      return await db.authorizer.canWrite(this.sub, this.claims, extension);
    } catch (err) {
      this.socket.ctx.log.warn({ err, channel: this.sub, extension }, 'private channel write authorization failed');
      return false;
    }
  }

  // ---------------------------------------------------------------- postgres_changes

  /** Subscribes the bindings with the channel's claims; failures come back as `ok: false`. */
  private startChanges(): Promise<ChangeSubscriptionResult> {
    const db = this.socket.ctx.gateway.database;
    if (!db) return Promise.resolve({ ok: false, error: NO_DATABASE });
    const request = {
      channel: this.sub,
      bindings: this.bindings,
      claims: this.claims!,
      deliver: (ids: number[], data: ChangeData, commitTs: number) => this.deliverChange(ids, data, commitTs),
      notify: (message: string) => this.state === 'joined' && this.pushSystem('postgres_changes', 'error', message),
    };
    // Through a promise, so a feed that throws synchronously is reported like one that rejects.
    return Promise.resolve()
      .then(() => db.changeFeed.subscribe(request))
      .catch((err: unknown): ChangeSubscriptionResult => {
        this.socket.ctx.log.warn({ err, channel: this.sub }, 'postgres_changes subscription failed');
        return { ok: false, error: `Unable to subscribe to changes: ${(err as Error).message}` };
      });
  }

  /** The wait of `postgres_changes_options.wait`: the feed's answer, or a join refusal. */
  private async awaitChanges(waitMs: number): Promise<ChangeSubscriptionResult> {
    let timer: NodeJS.Timeout | undefined;
    const started = this.startChanges();
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), waitMs);
      timer.unref();
    });
    const result = await Promise.race([started, timeout]);
    clearTimeout(timer);
    if (result === 'timeout') {
      // Whatever the feed answers later is no longer wanted.
      void started.then((late) => late.ok && late.subscription.unsubscribe());
      throw new JoinRefused(`PostgresChangesSubscribeTimeout: Timed out after ${waitMs}ms waiting for the postgres_changes subscription`, 'unavailable');
    }
    if (!result.ok) throw new JoinRefused(`RealtimeDisabledForConfiguration: ${result.error}`, 'bad_request');
    if (this.state === 'closed') result.subscription.unsubscribe();
    return result;
  }

  /** After the join reply: keep the subscription and say so with a `system` message, or report why not. */
  private adoptChanges(result: ChangeSubscriptionResult, claims: Claims): void {
    if (!result.ok) {
      if (this.state === 'joined') this.pushSystem('postgres_changes', 'error', result.error);
      return;
    }
    if (this.state !== 'joined') {
      result.subscription.unsubscribe();
      return;
    }
    this.changes = result.subscription;
    // A token refreshed while the subscription was being set up must still apply.
    if (this.claims !== claims) result.subscription.updateClaims(this.claims!);
    this.pushSystem('postgres_changes', 'ok', 'Subscribed to PostgreSQL');
  }

  private deliverChange(ids: number[], data: ChangeData, commitTs: number): void {
    if (this.state !== 'joined') return;
    if (Date.now() >= this.tokenExpiresAt) return this.expire(Date.now());
    try {
      this.socket.sendFrame(changeFrame(this.socket.vsn, this.topic, ids, data), false, commitTs);
    } catch (err) {
      this.socket.ctx.log.error({ err, channel: this.sub }, 'failed to deliver a postgres change');
    }
  }

  // ---------------------------------------------------------------- fan-out

  /** Hub delivery: broadcasts and presence diffs of this channel's topic. */
  deliver(msg: HubMessage): void {
    if (this.state !== 'joined') return;
    // Published after the token expired: never delivered, even before the sweep notices.
    if (msg.ts >= this.tokenExpiresAt) return this.expire(msg.ts);
    if (msg.event === 'broadcast') {
      if (!this.broadcastRead || (msg.origin === this && !this.config.self)) return;
      if (this.replayedIds) {
        const id = (msg.data as BroadcastData).id;
        if (id !== undefined && this.replayedIds.has(id)) return;
      }
    } else if (msg.event === PRESENCE_DIFF) {
      if (!this.presenceEnabled || !this.presenceRead) return;
    }
    try {
      this.socket.sendHubMessage(msg);
    } catch (err) {
      // The hub's fan-out loop must go on to the other subscribers (say, a payload that cannot be serialized).
      this.socket.ctx.error('internal');
      this.socket.ctx.log.error({ err, channel: this.sub, event: msg.event }, 'failed to deliver a hub message');
    }
  }

  // ---------------------------------------------------------------- inbound

  /** Handles a client message for this channel, in order with the ones before it. */
  receive(inbound: ChannelInbound): void {
    if (this.state === 'closed') return;
    if (this.busy) {
      const backlog = (this.backlog ??= []);
      if (backlog.length >= MAX_BACKLOG) {
        backlog.shift();
        this.socket.ctx.error('backlog_overflow');
      }
      backlog.push(inbound);
      return;
    }
    this.run(this.guarded(inbound));
  }

  /** Handles one message; a synchronous exception becomes a channel crash, never a process crash. */
  private guarded(inbound: ChannelInbound): Pending {
    try {
      return this.handle(inbound);
    } catch (err) {
      this.crash(err);
    }
  }

  private run(pending: Pending): void {
    if (!pending) return;
    this.busy = true;
    pending
      .catch((err: unknown) => this.crash(err))
      .finally(() => {
        this.busy = false;
        this.drain();
      })
      .catch(() => undefined);
  }

  /**
   * A bug, not bad input: answer as a crashed Phoenix channel does, with `phx_error`, so
   * the client rejoins (with back-off) instead of waiting on a channel in an unknown state.
   */
  private crash(err: unknown): void {
    this.socket.ctx.log.error({ err, channel: this.sub }, 'channel message handling failed');
    this.socket.ctx.error('internal');
    if (this.state !== 'joined') return;
    this.socket.push(this.joinRef, this.joinRef, this.topic, 'phx_error', '{}');
    this.release();
  }

  private drain(): void {
    while (!this.busy && this.backlog?.length) {
      if (this.state === 'closed') {
        this.backlog = undefined;
        return;
      }
      this.run(this.guarded(this.backlog.shift()!));
    }
  }

  private handle(inbound: ChannelInbound): Pending {
    if (inbound.kind === 'broadcast_push') return this.broadcastPush(inbound.push);
    const { message } = inbound;
    const payload = message.payload as Record<string, unknown>;
    switch (message.event) {
      case 'broadcast':
        return this.broadcastText(message.ref, payload);
      case 'presence':
        return this.presence(message.ref, payload);
      case 'access_token':
        return this.accessToken(payload.access_token);
      case 'phx_leave':
        this.leave(message.ref);
        return;
      default:
        // Counted toward the rate limit by the socket and otherwise ignored, as the real server does.
        return;
    }
  }

  // ---------------------------------------------------------------- broadcast

  private broadcastPush(push: BroadcastPush): Pending {
    const size = push.payload.length;
    if (push.encoding === 0) {
      return this.broadcast(push.ref, size, () => ({ event: push.event, payload: push.payload, frame: 'binary' }));
    }
    return this.broadcast(push.ref, size, () => {
      let payload: unknown;
      try {
        payload = JSON.parse(push.payload.toString('utf8'));
      } catch {
        return 'broadcast payload with JSON encoding is not valid JSON';
      }
      return { event: push.event, payload, json: push.payload, frame: 'binary' };
    });
  }

  /** A JSON `broadcast` message (serializer 1.0.0 clients, or a v2 text frame). */
  private broadcastText(ref: string | null, message: Record<string, unknown>): Pending {
    const event = message.event;
    if (typeof event !== 'string' || event === '' || Buffer.byteLength(event) > MAX_NAME_BYTES) {
      this.socket.ctx.error('bad_request');
      const reason = typeof event === 'string' && event !== '' ? `broadcast event names are at most ${MAX_NAME_BYTES} bytes` : 'broadcast needs a string event';
      if (this.config.ack) this.socket.reply(this.joinRef, ref, this.topic, 'error', { reason });
      return;
    }
    const json = Buffer.from(JSON.stringify(message.payload ?? {}));
    return this.broadcast(ref, json.length, () => ({ event, payload: message.payload ?? {}, json, frame: 'text' }));
  }

  /**
   * The broadcast handler of the real server: private channels need write permission
   * (otherwise the message is dropped silently, without ack), then the size check, then
   * fan-out to the topic (skipping the sender unless `self`), then the ack if asked for.
   */
  private broadcast(ref: string | null, size: number, build: () => BroadcastData | string): Pending {
    if (this.isPrivate && this.broadcastWrite === undefined) {
      return this.writeAllowed('broadcast').then((allowed) => {
        this.broadcastWrite = allowed;
        return this.broadcast(ref, size, build);
      });
    }
    if (this.isPrivate && !this.broadcastWrite) return;
    const { ctx } = this.socket;
    if (size > ctx.limits.maxPayloadBytes) {
      ctx.error('payload_too_large');
      if (this.config.ack) this.socket.reply(this.joinRef, ref, this.topic, 'error', 'payload_size_exceeded');
      return;
    }
    const data = build();
    if (typeof data === 'string') {
      ctx.error('bad_request');
      if (this.config.ack) this.socket.reply(this.joinRef, ref, this.topic, 'error', { reason: data });
      return;
    }
    // This node's members get it at once (local first); the ack waits until the bus took it
    // for the other nodes, and if it could not, says so (never a silent drop).
    return publishBroadcast(ctx.gateway.hub, this.sub, this.isPrivate, data, { origin: this }).then(
      () => {
        if (this.config.ack && !this.isClosed()) this.socket.reply(this.joinRef, ref, this.topic, 'ok', {});
      },
      (err: unknown) => {
        const busDown = err instanceof BusUnavailableError;
        ctx.error(busDown ? 'bus_unavailable' : 'internal');
        ctx.log.warn({ err, channel: this.sub }, busDown ? 'broadcast not sent: the bus is unavailable' : 'broadcast not sent');
        if (!busDown) {
          if (this.config.ack && !this.isClosed()) this.socket.reply(this.joinRef, ref, this.topic, 'error', {});
          return;
        }
        if (!this.isClosed()) {
          if (this.config.ack) this.socket.reply(this.joinRef, ref, this.topic, 'error', { reason: 'bus_unavailable' });
          else this.pushSystem('broadcast', 'error', 'the message was not sent: the gateway lost its connection to the cluster bus');
        }
      },
    );
  }

  // ---------------------------------------------------------------- presence

  private presence(ref: string | null, message: Record<string, unknown>): Pending {
    if (typeof message.event !== 'string') {
      this.socket.reply(this.joinRef, ref, this.topic, 'ok', {});
      return;
    }
    if (!this.presenceCalls.take()) {
      this.socket.ctx.error('rate_limit');
      this.shutdown('Client presence rate limit exceeded');
      return;
    }
    switch (message.event.toLowerCase()) {
      case 'track':
        return this.track(ref, 'payload' in message ? message.payload : {});
      case 'untrack':
        this.untrack();
        this.socket.reply(this.joinRef, ref, this.topic, 'ok', {});
        return;
      default:
        this.socket.ctx.error('bad_request');
        this.socket.reply(this.joinRef, ref, this.topic, 'error', {});
    }
  }

  private track(ref: string | null, value: unknown): Pending {
    if (this.isPrivate && this.presenceWrite === undefined) {
      return (async () => {
        // A track can be what enables presence; read permission for presence is then evaluated now.
        if (!this.presenceEnabled) await this.evaluateReadPermissions(true).catch(() => false);
        this.presenceWrite = await this.writeAllowed('presence');
        return this.track(ref, value);
      })();
    }
    const { ctx } = this.socket;
    if (this.isPrivate && !this.presenceWrite) {
      this.socket.reply(this.joinRef, ref, this.topic, 'error', {});
      return;
    }
    if (!isObject(value)) {
      ctx.error('bad_request');
      this.socket.reply(this.joinRef, ref, this.topic, 'error', { reason: 'Presence track payload must be a map' });
      return;
    }
    const json = JSON.stringify(value);
    if (Buffer.byteLength(json) > ctx.limits.maxPayloadBytes) {
      ctx.error('payload_too_large');
      this.shutdown('Track message size exceeded');
      return;
    }
    if (json === this.trackedJson) {
      this.socket.reply(this.joinRef, ref, this.topic, 'ok', {});
      return;
    }
    ctx.presence.track(this.hubTopic, this.config.presenceKey, this, value);
    this.trackedJson = json;
    const enabledNow = !this.presenceEnabled;
    this.presenceEnabled = true;
    this.socket.reply(this.joinRef, ref, this.topic, 'ok', {});
    // Tracking enabled presence for a channel that joined without it: it never got the
    // join-time state, so send it now or the members tracked earlier stay invisible to it.
    if (enabledNow && this.presenceRead) this.pushPresenceState();
  }

  private untrack(): void {
    if (this.trackedJson === undefined) return;
    this.trackedJson = undefined;
    this.socket.ctx.presence.untrack(this.hubTopic, this.config.presenceKey, this);
  }

  private pushPresenceState(): void {
    const { presence, gateway, log } = this.socket.ctx;
    if (!gateway.bus.shared) {
      this.socket.push(this.joinRef, null, this.topic, 'presence_state', presence.stateJson(this.hubTopic));
      return;
    }
    // Cluster: the members of every node, read from the bus's presence store. Diffs that arrive
    // first are held by the client until the state comes (Phoenix presence's pending diffs).
    presence.clusterStateJson(this.hubTopic).then(
      (json) => {
        if (this.state === 'joined') this.socket.push(this.joinRef, null, this.topic, 'presence_state', json);
      },
      (err: unknown) => {
        log.warn({ err, channel: this.sub }, 'presence_state not sent: the bus is unavailable');
        if (this.state === 'joined') this.pushSystem('presence', 'error', 'presence state is unavailable: the gateway lost its connection to the cluster bus');
      },
    );
  }

  // ---------------------------------------------------------------- access_token

  /** `access_token` never gets a reply; a bad token or lost permission shuts the channel down. */
  private accessToken(token: unknown): Pending {
    if (typeof token !== 'string' || token.startsWith('sb_') || token === this.token) return;
    return (async () => {
      const hadBroadcastRead = this.broadcastRead;
      const hadPresenceRead = this.presenceRead;
      try {
        await this.adoptToken(token);
      } catch (err) {
        this.socket.ctx.error('auth');
        this.shutdown((err as Error).message);
        return;
      }
      if (this.state !== 'joined') return;
      if (this.isPrivate) {
        let readable: boolean;
        try {
          readable = await this.evaluateReadPermissions(this.presenceEnabled);
        } catch {
          this.shutdown(NO_DATABASE);
          return;
        }
        if ((hadBroadcastRead && !this.broadcastRead) || (hadPresenceRead && !this.presenceRead)) {
          this.shutdown(`You no longer have permission to read from this Channel topic: ${this.sub}`);
          return;
        }
        if (!readable) {
          this.shutdown(`You do not have permissions to read from this Channel topic: ${this.sub}`);
          return;
        }
        this.broadcastWrite = undefined;
        this.presenceWrite = undefined;
      }
      this.changes?.updateClaims(this.claims!);
    })();
  }

  // ---------------------------------------------------------------- leave / close

  /** `phx_leave`: ok reply, then `phx_close` (reference §2.5). */
  private leave(ref: string | null): void {
    this.socket.reply(this.joinRef, ref, this.topic, 'ok', {});
    this.socket.push(this.joinRef, this.joinRef, this.topic, 'phx_close', '{}');
    this.release();
  }

  /** The channel's token expired: shut down with Supabase's message (the sweep does the same for quiet channels). */
  expire(now: number): void {
    this.socket.ctx.error('token_expired');
    this.shutdown(`Token has expired ${Math.max(0, Math.round((now - this.tokenExpiresAt) / 1000))} seconds ago`);
  }

  /** Server-side shutdown: a `system` error naming why, then `phx_close`; the client does not rejoin. */
  shutdown(message: string): void {
    if (this.state === 'closed') return;
    this.pushSystem('system', 'error', message);
    this.socket.push(this.joinRef, this.joinRef, this.topic, 'phx_close', '{}');
    this.release();
  }

  pushSystem(extension: string, status: 'ok' | 'error', message: string): void {
    this.socket.push(this.joinRef, null, this.topic, 'system', JSON.stringify({ extension, status, message, channel: this.sub }));
  }

  /** Frees everything the channel holds (presence, hub subscription, change feed). Idempotent. */
  release(): void {
    if (this.state === 'closed') return;
    const wasJoined = this.state === 'joined';
    this.state = 'closed';
    this.backlog = undefined;
    const { gateway } = this.socket.ctx;
    if (wasJoined) {
      gateway.hub.unsubscribe(this.hubTopic, this);
      gateway.metrics.channels.dec();
    }
    this.untrack();
    this.changes?.unsubscribe();
    this.changes = undefined;
    this.socket.forget(this);
  }
}
