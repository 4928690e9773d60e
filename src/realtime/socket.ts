// One Realtime WebSocket: decodes frames in its serializer version, answers heartbeats,
// routes channel messages, writes fan-out frames through the connection writer (it
// extends its WebSocket adapter, server/writer.ts: batching per turn, the byte budget,
// delivery metrics), and does its periodic checks (silence, token expiry, message rate)
// from the gateway's shared sweep.
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Claims } from '../core/auth.js';
import type { HubMessage } from '../core/hub.js';
import { nextConnectionId, type CloseReason, type ManagedConnection } from '../server/connections.js';
import { Channel, type ChannelInbound } from './channel.js';
import { CloseCode, decodeBinary, decodeText, encodeMessage, encodeReply, FrameError, type PhoenixMessage, type Vsn } from './codec.js';
import type { RealtimeContext } from './context.js';
import { TokenBucket, type IdentityBuckets } from './limits.js';
import { identityLimitText } from './context.js';
import { isAddressIdentity, userIdentity } from '../server/connections.js';
import { HttpError } from '../server/http-errors.js';
import { frameFor } from './wire.js';
import { MAX_NAME_BYTES, parseJoinPayload } from './join-config.js';
import { SocketChannels } from './socket-channels.js';
import { WebSocketWriter, type Delivery } from '../server/writer.js';

/** How long a client may keep flooding after its channels were shut down before its socket is closed. */
const FLOOD_GRACE_MS = 1000;

/** How long a closing socket may take to finish its close handshake before it is cut. */
const CLOSE_GRACE_MS = 5000;

/** The RealtimeSocket of a `ws` WebSocket, for the listeners shared by all sockets. */
const OWNER = Symbol('realtime socket');
type OwnedWebSocket = WebSocket & { [OWNER]: RealtimeSocket };

function ownerOf(ws: WebSocket): RealtimeSocket {
  return (ws as OwnedWebSocket)[OWNER];
}

export class RealtimeSocket extends WebSocketWriter implements ManagedConnection {
  readonly id = nextConnectionId('rt');
  readonly openedAt = Date.now();
  /** Joined (or joining) channels by wire topic. */
  readonly channels = new SocketChannels<Channel>();
  private lastSeen = this.openedAt;
  /**
   * Messages this socket may send: `--realtime-max-events-per-second`, burst
   * `--realtime-event-burst`. Made on first use and dropped by the sweep once full again
   * (a full bucket is the same as a new one), so a quiet socket holds none.
   */
  private events: TokenBucket | undefined;
  /** Joins this socket may make: `--realtime-socket-joins-per-second`, burst = channels per client + one second's worth. Kept like `events`. */
  private joins: TokenBucket | undefined;
  /** The buckets of the identity the socket counts against (kept while the socket holds it, see IdentityLimits.sweep). */
  private identity: IdentityBuckets;
  /** Set when the server started closing the socket (ms since the epoch), 0 while open. */
  private closingSince = 0;
  private released = false;
  /** When a message was first refused for rate (ms), 0 when not flooding: persisting floods close the socket. */
  private floodedAt = 0;
  /** When the last message was refused for rate (ms). */
  private lastRefusedAt = 0;

  /** The connection's token (the `apikey`): channels use it unless their join carries an access_token. */
  readonly token: string;
  /** The identity the caps count by (see ConnectionManager); moved to a user by `adoptIdentity`. */
  userKey: string;

  constructor(
    readonly ctx: RealtimeContext,
    ws: WebSocket,
    /** The upgraded TCP socket under `ws`, corked per event-loop turn to batch writes. */
    tcp: Duplex,
    readonly vsn: Vsn,
    token: string,
    userKey: string,
  ) {
    super(ws, tcp);
    // Thousands of sockets share the anon key and their address: one copy of each.
    this.token = ctx.intern(token);
    this.userKey = ctx.intern(userKey);
    this.identity = ctx.identities.of(userKey, this.openedAt);
    // Listeners shared by every socket (EventEmitter calls them with `this` = the WebSocket):
    // three closures per socket would cost more than the socket's own fields.
    (ws as OwnedWebSocket)[OWNER] = this;
    ws.on('message', RealtimeSocket.onMessage);
    ws.on('close', RealtimeSocket.onClose);
    ws.on('error', RealtimeSocket.onError);
  }

  get transport(): 'ws' {
    return 'ws';
  }

  private static onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
    ownerOf(this).onFrame(data, isBinary);
  }

  private static onClose(this: WebSocket): void {
    ownerOf(this).release();
  }

  private static onError(this: WebSocket, err: Error & { code?: string }): void {
    const socket = ownerOf(this);
    socket.ctx.error(err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'frame_too_large' : 'protocol');
    socket.ctx.log.debug({ err, connection: socket.id }, 'realtime websocket error');
  }

  // ---------------------------------------------------------------- inbound

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.closingSince) return;
    this.lastSeen = Date.now();
    this.ctx.metrics.received(data.length);
    try {
      if (isBinary) {
        if (this.vsn !== '2.0.0') throw new FrameError('binary frames need serializer 2.0.0 (vsn=2.0.0)', CloseCode.unsupportedData);
        const push = decodeBinary(data);
        if (!this.allowMessage()) return;
        this.routeToChannel(push.topic, push.joinRef, push.ref, { kind: 'broadcast_push', push });
      } else {
        this.route(decodeText(data.toString('utf8'), this.vsn));
      }
    } catch (err) {
      if (!(err instanceof FrameError)) {
        // A bug: this socket is in an unknown state, but the process and other sockets carry on.
        this.ctx.log.error({ err, connection: this.id }, 'realtime frame handling failed');
        this.ctx.error('internal');
        this.closeWith(CloseCode.internalError, 'internal error');
        return;
      }
      this.ctx.error('protocol');
      // Answered with an error reply: counted, so it cannot be used to flood.
      if (!this.allowMessage()) return;
      if (err.replyTo) this.reply(err.replyTo.joinRef, err.replyTo.ref, err.replyTo.topic, 'error', { reason: err.message });
      else this.closeWith(err.closeCode, err.message);
    }
  }

  private route(msg: PhoenixMessage): void {
    if (msg.topic === 'phoenix' && msg.event === 'heartbeat') {
      this.reply(null, msg.ref, 'phoenix', 'ok', {});
      return;
    }
    if (msg.event === 'phx_join') {
      // Joins have their own limit; an app joining many channels at start-up is not a flood.
      this.join(msg);
      return;
    }
    if (msg.event !== 'phx_leave' && msg.event !== 'access_token' && !this.allowMessage()) return;
    this.routeToChannel(msg.topic, msg.joinRef, msg.ref, { kind: 'message', message: msg }, msg.event === 'phx_leave');
  }

  private routeToChannel(topic: string, joinRef: string | null, ref: string | null, inbound: ChannelInbound, isLeave = false): void {
    const channel = this.channels.get(topic);
    if (!channel) {
      // Phoenix: a leave for a topic that is not joined is simply ok; anything else is unmatched.
      if (isLeave) this.reply(joinRef, ref, topic, 'ok', {});
      else this.reply(null, ref, topic, 'error', { reason: 'unmatched topic' });
      return;
    }
    // A message from an earlier join of this topic is stale: Phoenix drops it.
    if (joinRef !== null && joinRef !== channel.joinRef) return;
    channel.receive(inbound);
  }

  /**
   * Spends one message from this socket's bucket and its identity's. A message over either
   * is dropped (never fanned out): the first one shuts the socket's channels down with
   * "Too many messages per second", as Supabase does; a client still sending after
   * FLOOD_GRACE_MS has its socket closed (1008).
   */
  private allowMessage(): boolean {
    const now = this.lastSeen;
    const events = (this.events ??= new TokenBucket(this.ctx.limits.maxEventsPerSecond, this.ctx.limits.eventBurst, now));
    if (!events.take(now)) {
      this.flood(now, `per connection: ${events.describe()}`);
      return false;
    }
    if (!this.identity.events.take(now)) {
      this.flood(now, identityLimitText(this.userKey, this.identity.events));
      return false;
    }
    return true;
  }

  private flood(now: number, limit: string): void {
    this.ctx.error('rate_limit');
    this.lastRefusedAt = now;
    const message = `Too many messages per second (${limit})`;
    if (this.floodedAt === 0) {
      this.floodedAt = now;
      for (const channel of this.channels.list()) if (channel.state === 'joined') channel.shutdown(message);
      return;
    }
    if (now - this.floodedAt >= FLOOD_GRACE_MS) this.closeWith(CloseCode.policyViolation, message);
  }

  /**
   * A join's verified claims name who the client is: a socket counted by address (opened
   * with a key without a user) moves to that user's caps. Returns why not when the user is
   * at its connection cap, else undefined.
   */
  adoptIdentity(claims: Claims): string | undefined {
    if (claims.sub === undefined || !isAddressIdentity(this.userKey)) return undefined;
    try {
      this.ctx.connections.rekey(this, userIdentity(claims.sub));
    } catch (err) {
      if (err instanceof HttpError) return err.message;
      throw err;
    }
    this.identity = this.ctx.identities.of(this.userKey);
    return undefined;
  }

  /** Spends one of this socket's joins: undefined when it may join, else its limit ("10/s, burst 110"). */
  takeJoin(): string | undefined {
    const { limits } = this.ctx;
    const joins = (this.joins ??= new TokenBucket(limits.socketJoinsPerSecond, limits.maxChannelsPerClient + limits.socketJoinsPerSecond));
    return joins.take() ? undefined : joins.describe();
  }

  private join(msg: PhoenixMessage): void {
    if (Buffer.byteLength(msg.topic) > MAX_NAME_BYTES) {
      // Refused before anything keeps the name; counted as a message, so it cannot flood.
      if (!this.allowMessage()) return;
      this.ctx.metrics.join('bad_request');
      this.ctx.error('bad_request');
      this.reply(msg.joinRef, msg.ref, msg.topic, 'error', { reason: `TopicNameTooLong: The topic name must be at most ${MAX_NAME_BYTES} bytes (got ${Buffer.byteLength(msg.topic)})` });
      return;
    }
    if (!msg.topic.startsWith('realtime:')) {
      this.ctx.metrics.join('unmatched_topic');
      this.reply(null, msg.ref, msg.topic, 'error', { reason: 'unmatched topic' });
      return;
    }
    // A second join of a joined topic replaces the first, which is closed (Phoenix does the same).
    const existing = this.channels.get(msg.topic);
    if (existing) {
      if (existing.state === 'joined') existing.pushClose();
      existing.release();
    }
    const { limits } = this.ctx;
    const config = parseJoinPayload(msg.payload as Record<string, unknown>, { maxBindings: limits.maxBindingsPerJoin, maxPresenceKeyBytes: MAX_NAME_BYTES });
    // The members of a channel join with the same topic: one copy of it for all of them.
    const channel = new Channel(this, this.ctx.intern(msg.topic), msg.joinRef ?? msg.ref, config);
    this.channels.set(channel);
    channel.start(config, msg.ref);
  }

  /** Called by a channel when it is released. */
  forget(channel: Channel): void {
    if (this.channels.get(channel.topic) === channel) this.channels.delete(channel.topic);
  }

  // ---------------------------------------------------------------- outbound

  protected get delivery(): Delivery {
    return this.ctx.delivery;
  }

  /** Writes a frame: it leaves with the turn's other frames. `publishedAt` (a database change's commit time) feeds the delivery latency. */
  sendFrame(bytes: Buffer, binary: boolean, publishedAt?: number): void {
    this.write(bytes, binary, publishedAt);
  }

  /** A hub message (broadcast, presence diff) in this socket's wire format, encoded once for all sockets. */
  sendHubMessage(msg: HubMessage): void {
    const frame = frameFor(msg, this.vsn);
    if (frame) this.write(frame.bytes, frame.binary, msg);
  }

  reply(joinRef: string | null, ref: string | null, topic: string, status: 'ok' | 'error', response: unknown): void {
    this.sendFrame(encodeReply(this.vsn, joinRef, ref, topic, status, response), false);
  }

  push(joinRef: string | null, ref: string | null, topic: string, event: string, payloadJson: string): void {
    this.sendFrame(encodeMessage(this.vsn, joinRef, ref, topic, event, payloadJson), false);
  }

  // ---------------------------------------------------------------- sweep and close

  /** From the shared sweep: silence, message rate and token expiry. */
  tick(now: number): void {
    if (this.closingSince) {
      if (now - this.closingSince > CLOSE_GRACE_MS) this.ws.terminate();
      return;
    }
    if (now - this.lastSeen > this.ctx.limits.idleTimeoutMs) {
      this.close('idle');
      return;
    }
    // The byte budget's sweep half (server/writer.ts): over it at two sweeps in a row.
    if (this.sweep()) return;
    // A flood that stopped: the socket may be shut down again by the next one instead of closed.
    if (this.floodedAt && now - this.lastRefusedAt >= FLOOD_GRACE_MS) this.floodedAt = 0;
    if (this.events?.full(now)) this.events = undefined;
    if (this.joins?.full(now)) this.joins = undefined;
    // Runs every sweep for every socket: allocates only when a channel must go.
    let expired: Channel[] | undefined;
    for (const channel of this.channels.values()) {
      if (channel.state === 'joined' && channel.tokenExpiresAt <= now) (expired ??= []).push(channel);
    }
    if (expired) for (const channel of expired) channel.expire(now);
  }

  /** Server-initiated close (connection manager: drain, the writer: slow consumer, idle). */
  close(reason: CloseReason): void {
    // From here the last messages (a `system` notice) are written without the budget check.
    if (!this.beginClose()) return;
    switch (reason) {
      case 'shutdown':
        for (const channel of this.channels.values()) if (channel.state === 'joined') channel.pushSystem('system', 'ok', 'Server requested disconnect');
        this.closeWith(CloseCode.goingAway, 'Server requested disconnect');
        return;
      case 'slow_consumer':
        for (const channel of this.channels.values()) if (channel.state === 'joined') channel.pushSystem('system', 'error', 'Disconnected: the client is not reading its messages fast enough');
        this.closeWith(CloseCode.tryAgainLater, 'slow consumer: too much unsent data');
        return;
      case 'idle':
        this.closeWith(CloseCode.normal, `no message (or heartbeat) for ${this.ctx.limits.idleTimeoutMs} ms`);
        return;
      default:
        this.closeWith(CloseCode.policyViolation, reason);
    }
  }

  /** Starts the close handshake and releases every channel now (presence leaves go out at once). */
  closeWith(code: number, reason: string): void {
    if (this.closingSince) return;
    this.shut();
    this.closingSince = Date.now();
    // Close reasons are limited to 123 bytes by the protocol.
    this.ws.close(code, Buffer.from(reason).subarray(0, 123).toString());
    this.release();
  }

  private release(): void {
    if (this.released) {
      if (this.ws.readyState === this.ws.CLOSED) this.ctx.connections.remove(this);
      return;
    }
    this.released = true;
    this.shut();
    this.closingSince ||= Date.now();
    for (const channel of this.channels.list()) channel.release();
    if (this.ws.readyState === this.ws.CLOSED) this.ctx.connections.remove(this);
  }
}
