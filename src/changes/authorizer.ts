// Private-channel authorization (reference §2.6): RLS policies on `realtime.messages`,
// evaluated in the database with the user's role and claims and `realtime.topic()` set to
// the channel's subtopic. Read = the policies let the user SELECT a probe row for the
// extension; write = they let the user INSERT one. Probe rows are always rolled back.
//
// Identical questions asked at the same moment (a crowd joining one channel with the same
// claims) share one database round trip; answers are not cached beyond that, because
// policies may look at the clock or at other tables.
import type { Claims } from '../core/auth.js';
import type { Logger } from '../core/log.js';
import { stableJson } from './dispatcher.js';
import type { DatabaseRuntime } from './runtime.js';
import type { ChannelAuthorizer, ChannelPermissions } from './types.js';

export class DatabaseChannelAuthorizer implements ChannelAuthorizer {
  private readonly inflight = new Map<string, Promise<string[]>>();

  constructor(
    private readonly runtime: DatabaseRuntime,
    private readonly log: Logger,
  ) {}

  async canRead(subtopic: string, claims: Claims, presenceEnabled: boolean): Promise<ChannelPermissions> {
    const granted = await this.access(subtopic, claims, presenceEnabled ? ['broadcast', 'presence'] : ['broadcast'], 'read');
    return { broadcastRead: granted.includes('broadcast'), presenceRead: granted.includes('presence') };
  }

  async canWrite(subtopic: string, claims: Claims, extension: 'broadcast' | 'presence'): Promise<boolean> {
    const granted = await this.access(subtopic, claims, [extension], 'write');
    return granted.includes(extension);
  }

  /** Denies (never throws) when the database cannot answer: a private channel fails closed. */
  private access(topic: string, claims: Claims, extensions: string[], mode: 'read' | 'write'): Promise<string[]> {
    const key = `${mode}\u0000${topic}\u0000${extensions.join(',')}\u0000${stableJson(claims)}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.query(topic, claims, extensions, mode).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async query(topic: string, claims: Claims, extensions: string[], mode: 'read' | 'write'): Promise<string[]> {
    try {
      const { db } = await this.runtime.parts();
      const { rows } = await db.query<{ granted: string[] }>('select realtime.fanout_channel_access($1, $2, $3::jsonb, $4::text[], $5) as granted', [
        topic,
        String(claims.role),
        JSON.stringify(claims),
        extensions,
        mode,
      ]);
      return rows[0]?.granted ?? [];
    } catch (err) {
      this.log.error({ err: (err as Error).message, topic, mode }, 'private channel authorization failed; denying');
      return [];
    }
  }
}
