// The logical replication slot a consumer reads: its name (from --changes-consumer), its
// state as pg_replication_slots shows it, creation with an exported snapshot (the exact
// line between what the slot will decode and what it will not), and dropping it.
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Queryable } from '../database.js';
import { redactUrl } from '../../core/log.js';
import { parseLsn } from './lsn.js';

/**
 * The session settings every replication and conversion connection uses, so values print
 * in the forms values.ts converts (ISO dates in UTC, hex bytea, shortest exact floats).
 */
export const SESSION_OPTIONS = '-c DateStyle=ISO -c TimeZone=UTC -c bytea_output=hex -c extra_float_digits=1 -c IntervalStyle=postgres';

/**
 * `fanout_<consumer>`: slot names allow only a-z, 0-9 and _ (at most 63), so other
 * characters become _ and a short hash of the original keeps distinct consumers apart.
 */
export function slotName(consumer: string): string {
  const plain = consumer.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const exact = plain === consumer;
  const base = `fanout_${plain}`;
  if (exact && base.length <= 63) return base;
  const hash = createHash('sha256').update(consumer).digest('hex').slice(0, 8);
  return `${base.slice(0, 63 - 9)}_${hash}`;
}

export interface SlotState {
  /** The backend reading it now, if any. */
  activePid: number | null;
  /** `reserved`, `extended`, `unreserved` or `lost` (invalidated: the WAL it needed is gone). */
  walStatus: string | null;
  plugin: string | null;
  database: string | null;
  confirmedFlush: bigint | null;
}

export async function inspectSlot(db: Queryable, name: string): Promise<SlotState | undefined> {
  const { rows } = await db.query<{ active_pid: number | null; wal_status: string | null; plugin: string | null; database: string | null; confirmed: string | null }>(
    `select active_pid, wal_status::text as wal_status, plugin::text as plugin, database::text as database, confirmed_flush_lsn::text as confirmed
     from pg_replication_slots where slot_name = $1`,
    [name],
  );
  const r = rows[0];
  if (!r) return undefined;
  return { activePid: r.active_pid, walStatus: r.wal_status, plugin: r.plugin, database: r.database, confirmedFlush: r.confirmed ? parseLsn(r.confirmed) : null };
}

/** A connection in logical replication mode (the walsender protocol). */
export function replicationClient(databaseUrl: string, applicationName: string): pg.Client {
  const config: pg.ClientConfig & { replication: string } = { connectionString: databaseUrl, replication: 'database', application_name: applicationName, options: SESSION_OPTIONS };
  return new pg.Client(config);
}

export interface CreatedSlot {
  consistentPoint: bigint;
  /**
   * The `pg_snapshot` of the moment the slot starts decoding: a transaction visible in it
   * is not decoded by the slot, one invisible in it is.
   */
  snapshot: string;
}

/** Creates the slot (pgoutput) and reads the snapshot it exported before that snapshot expires. */
export async function createSlot(databaseUrl: string, name: string): Promise<CreatedSlot> {
  const repl = replicationClient(databaseUrl, 'fanout-wal-setup');
  repl.on('error', () => undefined);
  await repl.connect();
  try {
    const { rows } = await repl.query<{ consistent_point: string; snapshot_name: string }>(`CREATE_REPLICATION_SLOT ${pg.escapeIdentifier(name)} LOGICAL pgoutput (SNAPSHOT 'export')`);
    const created = rows[0]!;
    // The exported snapshot lives until the next command on the replication connection.
    const reader = new pg.Client({ connectionString: databaseUrl, application_name: 'fanout-wal-setup' });
    reader.on('error', () => undefined);
    await reader.connect();
    try {
      await reader.query('begin isolation level repeatable read');
      await reader.query(`set transaction snapshot ${pg.escapeLiteral(created.snapshot_name)}`);
      const snap = await reader.query<{ s: string }>('select pg_current_snapshot()::text as s');
      await reader.query('commit');
      return { consistentPoint: parseLsn(created.consistent_point), snapshot: snap.rows[0]!.s };
    } finally {
      await reader.end().catch(() => undefined);
    }
  } catch (err) {
    throw new Error(`cannot create the replication slot ${name} on ${redactUrl(databaseUrl)}: ${(err as Error).message}`, { cause: err });
  } finally {
    await repl.end().catch(() => undefined);
  }
}

/** Thrown when another backend holds the slot (another gateway with the same --changes-consumer). */
export class SlotBusyError extends Error {
  constructor(
    readonly slot: string,
    readonly pid: number,
  ) {
    super(`the replication slot ${slot} is in use by another process (PostgreSQL backend pid ${pid}): is another gateway running with the same --changes-consumer outside this cluster?`);
    this.name = 'SlotBusyError';
  }
}

/**
 * The slot's state once no backend reads it, waiting up to `waitMs` for one to let go (a
 * reader that just disconnected takes a moment to end on the server); SlotBusyError if it
 * does not.
 */
export async function inspectIdleSlot(db: Queryable, name: string, waitMs = 5000): Promise<SlotState | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const state = await inspectSlot(db, name);
    if (!state || state.activePid === null) return state;
    if (Date.now() >= deadline) throw new SlotBusyError(name, state.activePid);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Drops the slot; false when there was none. Refuses (SlotBusyError) while another backend reads it. */
export async function dropSlot(db: Queryable, name: string, waitMs = 5000): Promise<boolean> {
  const state = await inspectIdleSlot(db, name, waitMs);
  if (!state) return false;
  await db.query('select pg_drop_replication_slot($1)', [name]);
  return true;
}
