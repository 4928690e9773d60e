// The join pipeline of a Realtime channel (reference §2.3): every check in the real
// server's order (topic, payload, rate limits, token, identity caps, private-channel read
// permission, replay), the optional wait for the postgres_changes subscription, the
// cluster bus subscription, the reply, then what follows it: replayed broadcasts,
// presence_state and `replication_ready`. The join payload (`JoinConfig`) lives only as
// long as this pipeline runs; the channel keeps what it needs afterwards.
import { setTimeout as delay } from 'node:timers/promises';
import type { StoredBroadcast } from '../changes/types.js';
import type { Channel } from './channel.js';
import { ChannelChanges } from './channel-changes.js';
import { ChannelPermissions, NO_DATABASE, PermissionsUnavailable } from './channel-permissions.js';
import { pushPresenceState } from './channel-presence.js';
import { backoff, identityLimitText, joinAuthReason } from './context.js';
import { replayRequest, type JoinConfig } from './join-config.js';
import { replayFrame } from './wire.js';

/** How often a `replication_ready` channel checks the change feed again. */
const REPLICATION_READY_CHECK_MS = 500;

/** A join refusal: the reason the client sees and the label it is counted under. */
export class JoinRefused {
  constructor(
    readonly reason: string,
    readonly result: string,
    /** `ClientJoinRateLimitReached` also disconnects the socket (reference §2.4). */
    readonly disconnect = false,
  ) {}
}

/** Runs the whole join of `channel` and answers the join push `ref`. */
export async function runJoin(channel: Channel, config: JoinConfig, ref: string | null): Promise<void> {
  const { ctx } = channel;
  let replay: StoredBroadcast[];
  try {
    await authorizeJoin(channel, config);
    replay = await loadReplay(channel, config);
  } catch (err) {
    if (err instanceof JoinRefused) return refuseJoin(channel, err, ref);
    ctx.log.error({ err, channel: channel.sub }, 'channel join failed');
    return refuseJoin(channel, new JoinRefused('Unknown Error on Channel', 'error'), ref);
  }
  if (channel.isClosed()) return; // replaced by a newer join or the socket closed meanwhile

  const changes = config.postgresChanges.length ? (channel.changes = new ChannelChanges(channel, config.postgresChanges)) : undefined;
  let subscribed = false;
  if (changes && config.waitForChangesMs !== undefined) {
    // `postgres_changes_options.wait`: answer the join only once the feed has subscribed.
    const refusal = await changes.awaitSubscription(config.waitForChangesMs);
    if (refusal) return refuseJoin(channel, new JoinRefused(refusal.reason, refusal.result), ref);
    if (channel.isClosed()) return;
    subscribed = true;
  }
  try {
    // Subscribed on the bus before "ok", so what another node publishes right after reaches this member.
    await ctx.hub.follow(channel.hubTopic);
  } catch (err) {
    ctx.log.warn({ err, channel: channel.sub }, 'channel join refused: the bus is unavailable');
    return refuseJoin(channel, new JoinRefused('Unable to subscribe to the channel: the gateway lost its connection to the cluster bus', 'error'), ref);
  }
  if (channel.isClosed()) return;
  channel.reply(ref, 'ok', { postgres_changes: changes ? changes.replyBindings() : [] });
  channel.markJoined();
  ctx.metrics.join('ok');
  sendReplay(channel, replay);
  if (channel.fastlane.presenceEnabled && channel.fastlane.presenceRead) pushPresenceState(channel);
  if (config.replicationReady) void notifyReplicationReady(channel);
  if (changes) {
    if (subscribed) changes.announce();
    else changes.subscribeAfterJoin();
  }
}

async function refuseJoin(channel: Channel, err: JoinRefused, ref: string | null): Promise<void> {
  const { ctx, socket } = channel;
  ctx.metrics.join(err.result);
  ctx.error(err.result === 'rate_limited' ? 'rate_limit' : err.result === 'invalid_token' ? 'auth' : 'join');
  if (err.disconnect) {
    // A join flood: answer and disconnect at once, as Supabase disconnects at once. Waiting
    // out the back-off first would let the socket pile up joining channels meanwhile.
    channel.reply(ref, 'error', { reason: err.reason });
    channel.release();
    socket.closeWith(1001, 'Too many joins per second');
    return;
  }
  // The real server sleeps before every join error so rejoin loops cannot hammer it.
  await backoff(ctx.limits.channelErrorBackoffMs);
  if (!channel.isClosed()) {
    channel.reply(ref, 'error', { reason: err.reason });
    channel.release();
  }
}

/** Every check of the join pipeline in the real server's order; throws JoinRefused. */
async function authorizeJoin(channel: Channel, config: JoinConfig): Promise<void> {
  const { ctx, socket } = channel;
  if (!channel.sub) throw new JoinRefused('TopicNameRequired: You must provide a topic name', 'bad_request');
  if (config.problem) throw new JoinRefused(config.problem, 'bad_request');
  // Every join attempt spends from the socket's bucket, refused ones too, so refusals held
  // for the error back-off cannot pile up faster than the bucket allows.
  const socketJoins = socket.takeJoin();
  if (socketJoins !== undefined) throw new JoinRefused(`ClientJoinRateLimitReached: Too many joins per second (per connection: ${socketJoins})`, 'rate_limited', true);
  if (socket.channels.size > ctx.limits.maxChannelsPerClient) throw new JoinRefused('ChannelRateLimitReached: Too many channels', 'channel_limit');
  const requested = config.accessToken;
  const claims = await channel.adoptToken(requested && !requested.startsWith('sb_') ? requested : socket.token).catch((err: unknown) => {
    throw new JoinRefused(joinAuthReason(err), 'invalid_token');
  });
  // The join's token says who the client is (supabase-js connects with the anon key and
  // sends the user's token here): the socket now counts against that user's caps.
  const refused = socket.adoptIdentity(claims);
  if (refused) throw new JoinRefused(`ConnectionRateLimitReached: Too many connected users (${refused})`, 'rate_limited');
  const identity = socket.userKey;
  const identityJoins = ctx.identities.of(identity).joins;
  if (!identityJoins.take()) throw new JoinRefused(`ClientJoinRateLimitReached: Too many joins per second (${identityLimitText(identity, identityJoins)})`, 'rate_limited', true);
  // Gateway-wide last, so that only joins no identity limit refused spend the shared budget.
  if (!ctx.joins.take()) throw new JoinRefused(`ClientJoinRateLimitReached: Too many joins per second (gateway-wide: ${ctx.joins.describe()})`, 'rate_limited');
  if (channel.isPrivate) {
    const permissions = (channel.permissions = new ChannelPermissions(channel));
    const denied = `Unauthorized: You do not have permissions to read from this Channel topic: ${channel.sub}`;
    let readable: boolean;
    try {
      readable = await permissions.evaluateReads(channel.fastlane.presenceEnabled);
    } catch (err) {
      if (err instanceof PermissionsUnavailable) throw new JoinRefused(err.reason, 'unavailable');
      throw err;
    }
    if (!readable) throw new JoinRefused(denied, 'unauthorized');
    if (config.replay !== undefined && !channel.fastlane.broadcastRead) throw new JoinRefused(denied, 'unauthorized');
  } else if (config.replay !== undefined) {
    throw new JoinRefused('UnableToReplayMessages: Replay is not allowed for public channels', 'bad_request');
  }
}

/** The stored broadcasts a private channel's `broadcast.replay` asks for (reference §4.3); [] without one. */
async function loadReplay(channel: Channel, config: JoinConfig): Promise<StoredBroadcast[]> {
  if (!channel.isPrivate) return [];
  const request = replayRequest(config.replay);
  if (request === undefined) return [];
  if (request === 'invalid') throw new JoinRefused('UnableToReplayMessages: Replay params are not valid', 'bad_request');
  const db = channel.ctx.database;
  if (!db) throw new JoinRefused(NO_DATABASE, 'error');
  try {
    return await db.archive.replay(channel.sub, request.since, request.limit);
  } catch {
    throw new JoinRefused('UnableToReplayMessages: Realtime was unable to replay messages', 'error');
  }
}

/** Sends the replayed broadcasts, right after the join reply and before anything live, marked `replayed`. */
function sendReplay(channel: Channel, messages: StoredBroadcast[]): void {
  if (messages.length === 0) return;
  const { socket } = channel;
  channel.fastlane.replayedIds = new Set(messages.map((m) => m.id));
  for (const m of messages) {
    const frame = replayFrame(socket.vsn, channel.topic, m);
    if (frame) socket.sendFrame(frame.bytes, frame.binary);
  }
}

/**
 * `broadcast.replication_ready` (reference §6.1): a `system` "Replication connection
 * established" once the change feed is capturing (opening a lazily started database), or,
 * if it is not by the deadline, a shutdown saying so. Checked every 500 ms, as Supabase does.
 */
async function notifyReplicationReady(channel: Channel): Promise<void> {
  const deadline = Date.now() + channel.ctx.limits.replicationReadyTimeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    const feed = channel.ctx.database?.changeFeed;
    const ready = feed ? await Promise.race([feed.connect().then(() => true, () => false), delay(Math.max(0, left), false, { ref: false })]) : false;
    if (channel.state !== 'joined') return;
    if (ready) return channel.pushSystem('system', 'ok', 'Replication connection established');
    if (Date.now() >= deadline) return channel.shutdown('Replication connection was not established in time');
    await delay(Math.max(0, Math.min(REPLICATION_READY_CHECK_MS, deadline - Date.now())), undefined, { ref: false });
    if (channel.state !== 'joined') return;
  }
}
