// The delivery path of a Realtime channel member: its "fastlane", after Phoenix's
// `Phoenix.Channel.Server.dispatch/3`, where the PubSub registry holds a small
// `{:fastlane, transport_pid, serializer, intercepts}` per subscriber and fan-out writes
// to the transport directly instead of going through the channel process.
//
// The hub's fan-out reaches a member through this record and nothing else: the socket it
// writes to, what the member may receive (read permissions, presence, `self`), when its
// token expires, and the ids of broadcasts replayed at join. The channel (join pipeline,
// presence, permissions, postgres_changes) updates these fields; fan-out only reads them.
import type { HubMessage, Subscriber } from '../core/hub.js';
import type { BroadcastData } from './channel-topics.js';
import type { RealtimeContext } from './context.js';
import { PRESENCE_DIFF } from './wire.js';

/** The socket writer a fastlane delivers to (RealtimeSocket). */
export interface FastlaneSocket {
  readonly ctx: Pick<RealtimeContext, 'error' | 'log'>;
  /** Writes a hub message in the socket's wire format (encoded once per format for all sockets). */
  sendHubMessage(msg: HubMessage): void;
}

/** What the fastlane tells its channel: the token expired (seen at delivery time, before the sweep). */
export interface FastlaneOwner {
  /** The channel's subtopic, for logs. */
  readonly sub: string;
  expire(now: number): void;
}

// What the member receives, as bits of one number (one field instead of four per member).
const JOINED = 1;
/** Broadcast read permission (always true on a public channel; RLS on a private one). */
const BROADCAST_READ = 2;
/** Presence read permission. */
const PRESENCE_READ = 4;
/** Presence is on for the channel (`config.presence.enabled`, or a track turned it on). */
const PRESENCE_ENABLED = 8;
/** `config.broadcast.self`: the sender receives its own broadcasts. */
const SELF = 16;

export class Fastlane implements Subscriber {
  private bits = BROADCAST_READ | PRESENCE_READ;
  /**
   * The member's token's `exp` (seconds since the epoch): nothing published from then on
   * reaches it. Kept in seconds, a small integer stored in the record itself (ms would need
   * a boxed number per member); set by the channel before the member joins.
   */
  tokenExp = 0;
  /** Ids of the broadcasts replayed at join: a live copy of one of them is not sent again. */
  replayedIds: Set<string> | undefined;

  constructor(
    readonly socket: FastlaneSocket,
    readonly owner: FastlaneOwner,
    self: boolean,
    presenceEnabled: boolean,
  ) {
    if (self) this.bits |= SELF;
    if (presenceEnabled) this.bits |= PRESENCE_ENABLED;
  }

  /** Hub delivery: broadcasts and presence diffs of the channel's topic. */
  deliver(msg: HubMessage): void {
    const bits = this.bits;
    if (!(bits & JOINED)) return;
    // Published after the token expired: never delivered, even before the sweep notices.
    if (msg.ts >= this.tokenExp * 1000) return this.owner.expire(msg.ts);
    if (msg.event === 'broadcast') {
      if (!(bits & BROADCAST_READ) || (msg.origin === this && !(bits & SELF))) return;
      if (this.replayedIds) {
        const id = (msg.data as BroadcastData).id;
        if (id !== undefined && this.replayedIds.has(id)) return;
      }
    } else if (msg.event === PRESENCE_DIFF) {
      if ((bits & (PRESENCE_ENABLED | PRESENCE_READ)) !== (PRESENCE_ENABLED | PRESENCE_READ)) return;
    }
    try {
      this.socket.sendHubMessage(msg);
    } catch (err) {
      // The hub's fan-out loop must go on to the other subscribers (say, a payload that cannot be serialized).
      this.socket.ctx.error('internal');
      this.socket.ctx.log.error({ err, channel: this.owner.sub, event: msg.event }, 'failed to deliver a hub message');
    }
  }

  get joined(): boolean {
    return (this.bits & JOINED) !== 0;
  }

  set joined(on: boolean) {
    this.set(JOINED, on);
  }

  get broadcastRead(): boolean {
    return (this.bits & BROADCAST_READ) !== 0;
  }

  get presenceRead(): boolean {
    return (this.bits & PRESENCE_READ) !== 0;
  }

  /** What RLS lets the member read on a private channel (both true on a public one). */
  setReads(broadcastRead: boolean, presenceRead: boolean): void {
    this.set(BROADCAST_READ, broadcastRead);
    this.set(PRESENCE_READ, presenceRead);
  }

  get presenceEnabled(): boolean {
    return (this.bits & PRESENCE_ENABLED) !== 0;
  }

  enablePresence(): void {
    this.bits |= PRESENCE_ENABLED;
  }

  private set(bit: number, on: boolean): void {
    this.bits = on ? this.bits | bit : this.bits & ~bit;
  }
}
