// One joined Realtime channel on one socket (a Phoenix channel process in the real
// server): its state, its inbound queue and its replies. Each job lives in its own file
// and holds its own state, created only for the channels that need it:
//   channel-join.ts         the join pipeline (checks, replay, replication_ready, the reply)
//   fastlane.ts             the delivery path: the record the hub's fan-out writes through
//   channel-broadcast.ts    broadcasts the client sends (permission, size, publish, ack)
//   channel-presence.ts     track / untrack and presence_state        (presence users only)
//   channel-permissions.ts  private-channel RLS checks                 (private channels only)
//   channel-changes.ts      the postgres_changes subscription          (channels with bindings only)
// Messages for a channel are handled in order: while an asynchronous step runs (join, a
// permission lookup, a token check) later messages wait in a short backlog.
import type { Claims } from '../core/auth.js';
import type { BroadcastPush, PhoenixMessage } from './codec.js';
import type { RealtimeContext } from './context.js';
import type { JoinConfig } from './join-config.js';
import type { RealtimeSocket } from './socket.js';
import { channelTopic } from './channel-topics.js';
import { sendBroadcastPush, sendBroadcastText } from './channel-broadcast.js';
import type { ChannelChanges } from './channel-changes.js';
import { runJoin } from './channel-join.js';
import { NO_DATABASE, type ChannelPermissions } from './channel-permissions.js';
import { ChannelPresence } from './channel-presence.js';
import { Fastlane } from './fastlane.js';

export type ChannelInbound = { kind: 'message'; message: PhoenixMessage } | { kind: 'broadcast_push'; push: BroadcastPush };

/** A handler's result: nothing when it finished, a promise while it still runs. */
export type Pending = void | Promise<void>;

/** Messages a channel holds while an asynchronous step runs; beyond it the oldest are dropped. */
const MAX_BACKLOG = 100;

const WIRE_PREFIX = 'realtime:';

export class Channel {
  state: 'joining' | 'joined' | 'closed' = 'joining';
  /** The hub topic: the wire topic itself for a public channel, `realtime-private:<sub>` for a private one. */
  readonly hubTopic: string;
  readonly isPrivate: boolean;
  /** `config.broadcast.ack`: broadcasts are answered with a reply. */
  readonly ack: boolean;
  readonly presenceKey: string;
  /** The record the hub delivers through (see fastlane.ts). */
  readonly fastlane: Fastlane;
  token = '';
  claims: Claims | undefined;
  /** Private channels: RLS permissions, looked up in the database. */
  permissions: ChannelPermissions | undefined;
  /** Created by the first presence message. */
  presence: ChannelPresence | undefined;
  /** Channels with postgres_changes bindings. */
  changes: ChannelChanges | undefined;
  private busy = false;
  private backlog: ChannelInbound[] | undefined;

  constructor(
    readonly socket: RealtimeSocket,
    /** The wire topic, `realtime:<sub>`. */
    readonly topic: string,
    readonly joinRef: string | null,
    config: JoinConfig,
  ) {
    this.isPrivate = config.isPrivate;
    this.ack = config.ack;
    this.presenceKey = config.presenceKey;
    this.hubTopic = this.isPrivate ? channelTopic(this.sub, true) : topic;
    this.fastlane = new Fastlane(socket, this, config.self, config.presenceEnabled);
  }

  /** The subtopic: `room1` for `realtime:room1` (derived when needed: it is not on any hot path). */
  get sub(): string {
    return this.topic.slice(WIRE_PREFIX.length);
  }

  get ctx(): RealtimeContext {
    return this.socket.ctx;
  }

  /** When the channel's token expires (ms since the epoch); the shared sweep enforces it. */
  get tokenExpiresAt(): number {
    return this.fastlane.tokenExp * 1000;
  }

  /** A method, not a property check, so TypeScript does not narrow `state` across awaits. */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Runs the join pipeline (reference §2.3) and answers the join push with `ref`. */
  start(config: JoinConfig, ref: string | null): void {
    this.run(runJoin(this, config, ref));
  }

  /** Joined: from now on the hub's fan-out reaches this member. */
  markJoined(): void {
    this.state = 'joined';
    this.fastlane.joined = true;
    this.ctx.hub.subscribe(this.hubTopic, this.fastlane);
    this.ctx.metrics.channels.inc();
  }

  /** Verifies `token` and makes it the channel's; throws the AuthError otherwise. */
  async adoptToken(token: string): Promise<Claims> {
    const claims = await this.ctx.auth.verify(token);
    // Usually the socket's own token again (realtime-js sends it with every join): keep one string.
    this.token = token === this.socket.token ? this.socket.token : this.ctx.intern(token);
    this.claims = claims;
    this.fastlane.tokenExp = claims.exp;
    return claims;
  }

  reply(ref: string | null, status: 'ok' | 'error', response: unknown): void {
    this.socket.reply(this.joinRef, ref, this.topic, status, response);
  }

  /** `phx_close`: the channel is over on the server's side (after a leave, a shutdown, or a newer join of the topic). */
  pushClose(): void {
    this.socket.push(this.joinRef, this.joinRef, this.topic, 'phx_close', '{}');
  }

  pushSystem(extension: string, status: 'ok' | 'error', message: string): void {
    this.socket.push(this.joinRef, null, this.topic, 'system', JSON.stringify({ extension, status, message, channel: this.sub }));
  }

  // ---------------------------------------------------------------- inbound

  /** Handles a client message for this channel, in order with the ones before it. */
  receive(inbound: ChannelInbound): void {
    if (this.state === 'closed') return;
    if (this.busy) {
      const backlog = (this.backlog ??= []);
      if (backlog.length >= MAX_BACKLOG) {
        backlog.shift();
        this.ctx.error('backlog_overflow');
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
    this.ctx.log.error({ err, channel: this.sub }, 'channel message handling failed');
    this.ctx.error('internal');
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
    if (this.backlog?.length === 0) this.backlog = undefined;
  }

  private handle(inbound: ChannelInbound): Pending {
    if (inbound.kind === 'broadcast_push') return sendBroadcastPush(this, inbound.push);
    const { message } = inbound;
    const payload = message.payload as Record<string, unknown>;
    switch (message.event) {
      case 'broadcast':
        return sendBroadcastText(this, message.ref, payload, message.broadcastJson);
      case 'presence':
        return (this.presence ??= new ChannelPresence(this)).receive(this, message.ref, payload);
      case 'access_token':
        return this.refreshToken(payload.access_token);
      case 'phx_leave':
        this.leave(message.ref);
        return;
      default:
        // Counted toward the rate limit by the socket and otherwise ignored, as the real server does.
        return;
    }
  }

  // ---------------------------------------------------------------- access_token

  /** `access_token` never gets a reply; a bad token or lost permission shuts the channel down. */
  private refreshToken(token: unknown): Pending {
    if (typeof token !== 'string' || token.startsWith('sb_') || token === this.token) return;
    return (async () => {
      const hadBroadcastRead = this.fastlane.broadcastRead;
      const hadPresenceRead = this.fastlane.presenceRead;
      try {
        await this.adoptToken(token);
      } catch (err) {
        this.ctx.error('auth');
        this.shutdown((err as Error).message);
        return;
      }
      if (this.state !== 'joined') return;
      const permissions = this.permissions;
      if (permissions) {
        let readable: boolean;
        try {
          readable = await permissions.evaluateReads(this.fastlane.presenceEnabled);
        } catch {
          this.shutdown(NO_DATABASE);
          return;
        }
        if ((hadBroadcastRead && !this.fastlane.broadcastRead) || (hadPresenceRead && !this.fastlane.presenceRead)) {
          this.shutdown(`You no longer have permission to read from this Channel topic: ${this.sub}`);
          return;
        }
        if (!readable) {
          this.shutdown(`You do not have permissions to read from this Channel topic: ${this.sub}`);
          return;
        }
        permissions.forgetWrites();
      }
      this.changes?.updateClaims(this.claims!);
    })();
  }

  // ---------------------------------------------------------------- leave / close

  /** `phx_leave`: ok reply, then `phx_close` (reference §2.5). */
  private leave(ref: string | null): void {
    this.reply(ref, 'ok', {});
    this.pushClose();
    this.release();
  }

  /** The channel's token expired: shut down with Supabase's message (the sweep does the same for quiet channels). */
  expire(now: number): void {
    this.ctx.error('token_expired');
    this.shutdown(`Token has expired ${Math.max(0, Math.round((now - this.tokenExpiresAt) / 1000))} seconds ago`);
  }

  /** Server-side shutdown: a `system` error naming why, then `phx_close`; the client does not rejoin. */
  shutdown(message: string): void {
    if (this.state === 'closed') return;
    this.pushSystem('system', 'error', message);
    this.pushClose();
    this.release();
  }

  /** Frees everything the channel holds (presence, hub subscription, change feed). Idempotent. */
  release(): void {
    if (this.state === 'closed') return;
    const wasJoined = this.state === 'joined';
    this.state = 'closed';
    this.fastlane.joined = false;
    this.backlog = undefined;
    if (wasJoined) {
      this.ctx.hub.unsubscribe(this.hubTopic, this.fastlane);
      this.ctx.metrics.channels.dec();
    }
    this.presence?.untrack(this);
    this.changes?.unsubscribe();
    this.changes = undefined;
    this.socket.forget(this);
  }
}
