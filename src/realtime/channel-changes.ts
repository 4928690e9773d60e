// A channel's postgres_changes bindings and their subscription to the change feed
// (reference §5): subscribed with the channel's claims during the join (when the client
// asked to wait) or right after it, re-evaluated after an `access_token`, and each change
// written to the socket as a frame encoded once for every channel with the same bindings.
// Only channels whose join has bindings have one.
import type { Claims } from '../core/auth.js';
import type { ChangeData, ChangeSubscription, ChangeSubscriptionResult, PostgresChangesParams } from '../changes/types.js';
import type { Channel } from './channel.js';
import { NO_DATABASE } from './channel-permissions.js';
import { bindingId } from './join-config.js';
import { changeFrame } from './wire.js';

export class ChannelChanges {
  readonly bindings: { id: number; params: PostgresChangesParams }[];
  private subscription: ChangeSubscription | undefined;
  /** The channel let go of its bindings: a subscription that arrives now is cancelled at once. */
  private released = false;

  constructor(
    private readonly channel: Channel,
    params: PostgresChangesParams[],
  ) {
    this.bindings = params.map((p) => ({ id: bindingId(p), params: p }));
  }

  /** The bindings as the join reply carries them: the params with their ids. */
  replyBindings(): object[] {
    return this.bindings.map((b) => ({ ...b.params, id: b.id }));
  }

  /**
   * `postgres_changes_options.wait`: subscribes before the join is answered. Resolves with
   * why the join must be refused (and under which result) when the feed refuses the
   * bindings or does not answer within `waitMs`, else with undefined.
   */
  async awaitSubscription(waitMs: number): Promise<{ reason: string; result: string } | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const started = this.subscribe();
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), waitMs);
      timer.unref();
    });
    const result = await Promise.race([started, timeout]);
    clearTimeout(timer);
    if (result === 'timeout') {
      // Whatever the feed answers later is no longer wanted.
      void started.then((late) => late.ok && late.subscription.unsubscribe());
      return { reason: `PostgresChangesSubscribeTimeout: Timed out after ${waitMs}ms waiting for the postgres_changes subscription`, result: 'unavailable' };
    }
    if (!result.ok) return { reason: `RealtimeDisabledForConfiguration: ${result.error}`, result: 'bad_request' };
    this.keep(result.subscription);
    return undefined;
  }

  /** After a join that did not wait: subscribes now, then says how it went with a `system` message. */
  subscribeAfterJoin(): void {
    const claims = this.channel.claims!;
    void this.subscribe().then((result) => {
      const { channel } = this;
      if (!result.ok) {
        if (channel.state === 'joined') channel.pushSystem('postgres_changes', 'error', result.error);
        return;
      }
      if (channel.state !== 'joined' || this.released) {
        result.subscription.unsubscribe();
        return;
      }
      this.keep(result.subscription);
      // A token refreshed while the subscription was being set up must still apply.
      if (channel.claims !== claims) result.subscription.updateClaims(channel.claims!);
      this.announce();
    });
  }

  /** The `system` message that the subscription is in place. */
  announce(): void {
    this.channel.pushSystem('postgres_changes', 'ok', 'Subscribed to PostgreSQL');
  }

  updateClaims(claims: Claims): void {
    this.subscription?.updateClaims(claims);
  }

  unsubscribe(): void {
    this.released = true;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  private keep(subscription: ChangeSubscription): void {
    if (this.released) subscription.unsubscribe();
    else this.subscription = subscription;
  }

  /** Subscribes the bindings with the channel's claims; failures come back as `ok: false`. */
  private subscribe(): Promise<ChangeSubscriptionResult> {
    const { channel } = this;
    const db = channel.ctx.database;
    if (!db) return Promise.resolve({ ok: false, error: NO_DATABASE });
    const request = {
      channel: channel.sub,
      bindings: this.bindings,
      claims: channel.claims!,
      deliver: (ids: number[], data: ChangeData, commitTs: number) => this.deliver(ids, data, commitTs),
      notify: (message: string) => channel.state === 'joined' && channel.pushSystem('postgres_changes', 'error', message),
    };
    // Through a promise, so a feed that throws synchronously is reported like one that rejects.
    return Promise.resolve()
      .then(() => db.changeFeed.subscribe(request))
      .catch((err: unknown): ChangeSubscriptionResult => {
        channel.ctx.log.warn({ err, channel: channel.sub }, 'postgres_changes subscription failed');
        return { ok: false, error: `Unable to subscribe to changes: ${(err as Error).message}` };
      });
  }

  private deliver(ids: number[], data: ChangeData, commitTs: number): void {
    const { channel } = this;
    if (channel.state !== 'joined') return;
    if (Date.now() >= channel.tokenExpiresAt) return channel.expire(Date.now());
    try {
      channel.socket.sendFrame(changeFrame(channel.socket.vsn, channel.topic, ids, data), false, commitTs);
    } catch (err) {
      channel.ctx.log.error({ err, channel: channel.sub }, 'failed to deliver a postgres change');
    }
  }
}
