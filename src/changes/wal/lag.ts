// How far the change feed's replication slot is behind, as Prometheus gauges: bytes of WAL
// it holds back (pg_current_wal_lsn() - confirmed_flush_lsn) and the age of the oldest WAL
// it has not confirmed. Every node of a cluster samples the one slot (one cheap query every
// few seconds), so the figure survives a leader that hangs; a missing slot reads as no series.
import type { Gauge } from 'prom-client';
import type { Logger } from '../../core/log.js';
import type { Queryable } from '../database.js';
import { parseLsn } from './lsn.js';

export interface SlotLagGauges {
  changeSlotLagBytes: Gauge;
  changeSlotLagSeconds: Gauge;
}

export class SlotLagMonitor {
  private timer: NodeJS.Timeout | undefined;
  /** (time, server WAL position) samples, oldest first: the age of unconfirmed WAL is read off them. */
  private readonly samples: { at: number; wal: bigint }[] = [];
  private warned = false;

  constructor(
    private readonly db: Queryable,
    private readonly slot: string,
    private readonly gauges: SlotLagGauges,
    private readonly log: Logger,
    private readonly intervalMs = 5000,
  ) {}

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.gauges.changeSlotLagBytes.remove(this.slot);
    this.gauges.changeSlotLagSeconds.remove(this.slot);
  }

  /** One reading; exported for tests. */
  async sample(now = Date.now()): Promise<{ bytes: number; seconds: number } | undefined> {
    try {
      const { rows } = await this.db.query<{ wal: string; confirmed: string | null }>(
        `select pg_current_wal_lsn()::text as wal, (select confirmed_flush_lsn::text from pg_replication_slots where slot_name = $1) as confirmed`,
        [this.slot],
      );
      const r = rows[0]!;
      if (!r.confirmed) {
        this.gauges.changeSlotLagBytes.remove(this.slot);
        this.gauges.changeSlotLagSeconds.remove(this.slot);
        return undefined;
      }
      const wal = parseLsn(r.wal);
      const confirmed = parseLsn(r.confirmed);
      this.samples.push({ at: now, wal });
      // The oldest unconfirmed WAL was written after the newest sample the slot has passed.
      let caughtUp = -1;
      for (let i = this.samples.length - 1; i >= 0; i--) {
        if (this.samples[i]!.wal <= confirmed) {
          caughtUp = i;
          break;
        }
      }
      const bytes = Number(wal > confirmed ? wal - confirmed : 0n);
      const seconds = bytes === 0 || caughtUp === this.samples.length - 1 ? 0 : (now - (caughtUp >= 0 ? this.samples[caughtUp]!.at : this.samples[0]!.at)) / 1000;
      if (caughtUp > 0) this.samples.splice(0, caughtUp);
      if (this.samples.length > 10_000) this.samples.splice(0, this.samples.length - 10_000);
      this.gauges.changeSlotLagBytes.labels(this.slot).set(bytes);
      this.gauges.changeSlotLagSeconds.labels(this.slot).set(seconds);
      this.warned = false;
      return { bytes, seconds };
    } catch (err) {
      if (!this.warned) this.log.warn({ err: (err as Error).message, slot: this.slot }, 'cannot read the replication slot lag');
      this.warned = true;
      return undefined;
    }
  }
}
