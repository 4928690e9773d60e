// `--changes-capture wal|outbox|auto`: which capture a database gets, and why. WAL capture
// needs PostgreSQL (not PGlite) with wal_level=logical, free replication slots and WAL
// senders, a role that may replicate (REPLICATION or superuser) and a pg_hba.conf that lets
// it open a replication connection; `auto` checks each and falls back to the outbox with
// the reason, `wal` refuses to start without them.
import type { Database } from '../database.js';
import { replicationClient } from './slot.js';
import { scrubSecrets } from '../../core/log.js';

export type CaptureSetting = 'auto' | 'wal' | 'outbox';
export type CaptureMode = 'wal' | 'outbox';

export interface CaptureChoice {
  mode: CaptureMode;
  /** Why, for the start-up log. */
  reason: string;
}

/** Why WAL capture cannot run on this database (undefined when it can). */
export async function walUnavailableReason(db: Database, databaseUrl: string | undefined): Promise<string | undefined> {
  if (db.kind !== 'postgres' || !databaseUrl) return 'the embedded PGlite database has no logical replication';
  const { rows } = await db.query<{ wal_level: string; may_replicate: boolean; slots: number; senders: number }>(
    `select current_setting('wal_level') as wal_level,
            coalesce((select rolreplication or rolsuper from pg_roles where rolname = current_user), false) as may_replicate,
            current_setting('max_replication_slots')::int as slots,
            current_setting('max_wal_senders')::int as senders`,
  );
  const r = rows[0]!;
  if (r.wal_level !== 'logical') return `the server has wal_level=${r.wal_level} (logical is needed)`;
  if (!r.may_replicate) return 'the database role has neither REPLICATION nor superuser';
  if (r.slots < 1) return 'the server has max_replication_slots=0';
  if (r.senders < 1) return 'the server has max_wal_senders=0';
  // pg_hba.conf decides whether a replication connection is allowed: only trying tells.
  const probe = replicationClient(databaseUrl, 'fanout-wal-probe');
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.query('IDENTIFY_SYSTEM');
  } catch (err) {
    return `a replication connection was refused (${scrubSecrets((err as Error).message)})`;
  } finally {
    await probe.end().catch(() => undefined);
  }
  return undefined;
}

export async function chooseCapture(db: Database, setting: CaptureSetting, databaseUrl: string | undefined): Promise<CaptureChoice> {
  if (setting === 'outbox') return { mode: 'outbox', reason: '--changes-capture outbox' };
  const why = await walUnavailableReason(db, databaseUrl);
  if (setting === 'wal') {
    if (why) throw new Error(`--changes-capture wal cannot run: ${why}`);
    return { mode: 'wal', reason: '--changes-capture wal' };
  }
  return why ? { mode: 'outbox', reason: `auto: ${why}` } : { mode: 'wal', reason: 'auto: wal_level=logical and the role may replicate' };
}
