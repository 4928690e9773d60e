// Broadcast replay (reference §4.3): a private channel joined with
// `config.broadcast.replay = {since, limit}` first receives the newest `limit` (1..25)
// broadcasts stored in `realtime.messages` for its topic since `since` (ms since the
// epoch), oldest first. They are read with the gateway's own rights, as Supabase does: the
// join has already checked that the user may read broadcasts on this channel. Each row is
// sent as message-broadcast.ts says the live path sends it: its binary payload or its JSON
// payload; a row with neither is not a broadcast and does not count toward `limit`.
import type { Logger } from '../core/log.js';
import type { DatabaseRuntime } from './runtime.js';
import { messageBody, type MessageRow } from './message-broadcast.js';
import type { BroadcastArchive, StoredBroadcast } from './types.js';

/** Supabase's `@hard_limit`: a replay returns at most this many messages. */
export const REPLAY_HARD_LIMIT = 25;

export class DatabaseBroadcastArchive implements BroadcastArchive {
  constructor(
    private readonly runtime: DatabaseRuntime,
    private readonly log: Logger,
  ) {}

  async replay(subtopic: string, since: number, limit: number): Promise<StoredBroadcast[]> {
    const { db } = await this.runtime.parts();
    // `inserted_at` is a timestamp without time zone written by now() in the session's zone:
    // compare in that zone. The newest `limit`, then oldest first.
    const { rows } = await db
      .query<MessageRow & { id: string; event: string }>(
        `select id::text as id, event, payload, binary_payload from (
           select id, event, payload, binary_payload, inserted_at from realtime.messages
            where topic = $1 and private is true and extension = 'broadcast' and event is not null
              and (payload is not null or binary_payload is not null)
              and inserted_at >= (to_timestamp($2::float8 / 1000) at time zone current_setting('TimeZone'))
            order by inserted_at desc, id desc
            limit $3) newest
         order by inserted_at, id`,
        [subtopic, since, Math.max(1, Math.min(limit, REPLAY_HARD_LIMIT))],
      )
      .catch((err: unknown) => {
        this.log.error({ err: (err as Error).message, topic: subtopic }, 'broadcast replay failed');
        throw err;
      });
    const stored: StoredBroadcast[] = [];
    for (const row of rows) {
      const body = messageBody(row);
      if (body) stored.push({ id: row.id, event: row.event, body });
    }
    return stored;
  }
}
