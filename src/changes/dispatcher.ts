// Turns captured rows into deliveries. For each window of changes it
//   1. finds candidate bindings through the index (equality lookups + scanned bindings),
//   2. evaluates their filters in JavaScript, batching the rest into one database query,
//   3. checks row-level security once per table and distinct set of claims (one query for
//      the whole window), for INSERT/UPDATE on tables with RLS enabled,
//   4. builds each distinct payload once (per role and `select`) and calls each channel's
//      `deliver` once per change with all its matching binding ids.
// Rows from `realtime.messages` (`realtime.send`, `send_binary`, `broadcast_changes`) are
// published as broadcasts by message-broadcast.ts.
//
// Work is serialized (one window at a time, in commit order) so deliveries keep the order of
// the database. After the gateway (re)starts, changes dispatched during the replay window —
// including those committed while it was down — are kept, and a subscription created in that
// window receives the ones it missed: a client reconnecting after a restart sees what was
// committed meanwhile. Each subscription records when it entered the index, each buffered
// change when it was matched, so nothing is delivered twice.
//
// It stays one file: the four steps above run on one serialized queue and share the
// binding index and the replay buffer, and the no-duplicate argument needs them together.
import type { Claims } from '../core/auth.js';
import type { Hub } from '../core/hub.js';
import type { Logger } from '../core/log.js';
import type { GatewayMetrics } from '../server/metrics.js';
import { BindingIndex, entityKey, type IndexableBinding } from './binding-index.js';
import type { Catalog, TableMeta } from './catalog.js';
import type { Queryable } from './database.js';
import { evaluatePredicates, visibleKeys, type VisibilityCheck } from './db-checks.js';
import type { ActionFilter, ChangeAction } from './filter.js';
import { evaluateFilters, valueText, type DatabasePredicate, type MatchOptions, type PreparedFilter, type ValueClass } from './matcher.js';
import { publishMessageRow } from './message-broadcast.js';
import type { CapturedRow } from './outbox.js';
import { actionName, buildChangeData, errorChangeData, ERROR_NO_PRIMARY_KEY, ERROR_UNAUTHORIZED } from './payload.js';
import type { ChangeData, ChangeSubscriptionRequest } from './types.js';

export interface FeedBinding extends IndexableBinding {
  readonly sub: FeedSubscription;
  /** The id the join reply gave this binding (shared by the tables of a wildcard binding). */
  readonly id: number;
  readonly schema: string;
  readonly table: string;
  readonly action: ActionFilter;
  readonly filters: PreparedFilter[];
  readonly select: ReadonlySet<string> | null;
  /** Distinguishes payload shapes: bindings with equal keys (and role) share one payload. */
  readonly selectKey: string;
  readonly indexEntry: { column: string; cls: ValueClass; keys: string[] } | null;
}

/** One channel's postgres_changes subscription. */
export class FeedSubscription {
  active = true;
  /** Order of entry into the index (0 until added). */
  serial = 0;
  bindings: FeedBinding[] = [];
  claims!: Claims;
  claimsKey!: string;
  role!: string;

  constructor(
    readonly channel: string,
    readonly deliver: ChangeSubscriptionRequest['deliver'],
    claims: Claims,
    readonly notify?: ChangeSubscriptionRequest['notify'],
  ) {
    this.setClaims(claims);
  }

  setClaims(claims: Claims): void {
    this.claims = claims;
    this.role = String(claims.role);
    this.claimsKey = stableJson(claims);
  }
}

/** JSON with sorted keys: equal claims give equal strings whatever order the token listed them in. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .sort()
      .filter((k) => obj[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export interface DispatcherOptions {
  db: Queryable;
  catalog: Catalog;
  hub: Hub;
  metrics: GatewayMetrics;
  log: Logger;
  match: MatchOptions;
  /** How long after start-up changes are kept for subscriptions that arrive late (reconnecting clients). */
  replayMs: number;
  /** At most this many changes are kept for replay. */
  replayLimit?: number;
}

interface WorkItem {
  row: CapturedRow;
  action: ChangeAction;
  meta: TableMeta;
  /** Bindings whose filters passed, awaiting RLS. */
  visible: FeedBinding[];
  /** Bindings waiting for the database to evaluate some conditions. */
  pending: { binding: FeedBinding; predicates: DatabasePredicate[] }[];
  /** Role → error text, for roles that get an error instead of rows. */
  errors: Map<string, string>;
  errorBindings: FeedBinding[];
}

/** Work counters, to show that a change costs work in proportion to its matching subscribers. */
export interface DispatchStats {
  /** Changes on watched tables. */
  changes: number;
  /** Bindings the index returned as candidates (each had its filters evaluated). */
  candidates: number;
  /** Conditions sent to the database for evaluation. */
  dbPredicates: number;
  /** RLS round trips (one per table per window). */
  rlsQueries: number;
  /** Distinct-claims checks inside them. */
  rlsChecks: number;
  /** `deliver` calls. */
  deliveries: number;
}

export class ChangeDispatcher {
  readonly stats: DispatchStats = { changes: 0, candidates: 0, dbPredicates: 0, rlsQueries: 0, rlsChecks: 0, deliveries: 0 };
  private readonly index = new BindingIndex<FeedBinding>();
  /** Every active subscription, for notices that concern them all. */
  private readonly subscriptions = new Set<FeedSubscription>();
  /** entity → role → number of bindings, to know whose privileges matter for a change. */
  private readonly roles = new Map<string, Map<string, number>>();
  private chain: Promise<void> = Promise.resolve();
  private serial = 0;
  private replayBuffer: { row: CapturedRow; matchedAt: number }[] | null = [];
  private readonly replayUntil: number;
  private readonly replayLimit: number;

  constructor(private readonly o: DispatcherOptions) {
    this.replayUntil = Date.now() + o.replayMs;
    this.replayLimit = o.replayLimit ?? 10_000;
  }

  get bindingCount(): number {
    return this.index.size;
  }

  add(sub: FeedSubscription): void {
    sub.serial = ++this.serial;
    this.subscriptions.add(sub);
    for (const b of sub.bindings) {
      this.index.add(b);
      this.countRole(b.entity, sub.role, 1);
    }
    if (this.replayOpen() && this.replayBuffer!.length) void this.enqueue(() => this.replayFor(sub));
  }

  remove(sub: FeedSubscription): void {
    if (!sub.active) return;
    sub.active = false;
    this.subscriptions.delete(sub);
    for (const b of sub.bindings) {
      this.index.remove(b);
      this.countRole(b.entity, sub.role, -1);
    }
  }

  updateClaims(sub: FeedSubscription, claims: Claims): void {
    if (!sub.active) return sub.setClaims(claims);
    for (const b of sub.bindings) this.countRole(b.entity, sub.role, -1);
    sub.setClaims(claims);
    for (const b of sub.bindings) this.countRole(b.entity, sub.role, 1);
  }

  /** Tells every subscription something about capture itself (e.g. changes were lost), after the windows queued before it. */
  notice(message: string): Promise<void> {
    return this.enqueue(async () => {
      for (const sub of this.subscriptions) {
        try {
          sub.notify?.(message);
        } catch (err) {
          this.o.log.error({ err, channel: sub.channel }, 'postgres_changes notice failed');
        }
      }
    });
  }

  /** Handles a window of captured rows, after every window queued before it. */
  process(rows: CapturedRow[]): Promise<void> {
    return this.enqueue(() => this.processRows(rows));
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.chain.then(task);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private replayOpen(): boolean {
    if (this.replayBuffer && Date.now() >= this.replayUntil) this.replayBuffer = null;
    return this.replayBuffer !== null;
  }

  private async replayFor(sub: FeedSubscription): Promise<void> {
    if (!sub.active || !this.replayOpen()) return;
    const missed = this.replayBuffer!.filter((e) => e.matchedAt < sub.serial).map((e) => e.row);
    if (missed.length) await this.dispatchChanges(missed, sub);
  }

  private async processRows(rows: CapturedRow[]): Promise<void> {
    // Broadcasts interleave with changes in commit order: flush the changes before each one.
    let changes: CapturedRow[] = [];
    for (const row of rows) {
      if (row.kind === 'broadcast') {
        if (changes.length) await this.dispatchChanges(changes);
        changes = [];
        this.publishBroadcast(row);
      } else {
        changes.push(row);
      }
    }
    if (changes.length) await this.dispatchChanges(changes);
  }

  private publishBroadcast(row: CapturedRow): void {
    publishMessageRow(this.o.hub, row.record ?? {})?.catch((err: unknown) => this.o.log.warn({ err }, 'broadcast from the database not published: the bus is unavailable'));
  }

  /** Steps 1–4 for a run of changes, for every subscription or (replay) for one. */
  private async dispatchChanges(rows: CapturedRow[], only?: FeedSubscription): Promise<void> {
    const items: WorkItem[] = [];
    const predicates: DatabasePredicate[] = [];
    const replaying = !only && this.replayOpen();
    for (const row of rows) {
      const { item, matchedAt } = await this.match(row, only);
      if (replaying) this.remember(row, matchedAt);
      if (!item) {
        if (!only) this.observeLag(row);
        continue;
      }
      items.push(item);
      for (const p of item.pending) predicates.push(...p.predicates);
    }
    if (predicates.length) {
      this.stats.dbPredicates += predicates.length;
      await this.resolvePredicates(items, predicates);
    }
    await this.applyRls(items);
    for (const item of items) {
      await this.deliver(item);
      if (!only) this.observeLag(item.row);
    }
  }

  private remember(row: CapturedRow, matchedAt: number): void {
    const buffer = this.replayBuffer!;
    buffer.push({ row, matchedAt });
    if (buffer.length > this.replayLimit) buffer.splice(0, buffer.length - this.replayLimit);
  }

  /**
   * Step 1 and the JavaScript half of step 2 for one change. `matchedAt` is the serial of
   * the newest subscription that was in the index when candidates were taken.
   */
  private async match(row: CapturedRow, only?: FeedSubscription): Promise<{ item?: WorkItem; matchedAt: number }> {
    const entity = entityKey(row.schema, row.table);
    const rolesHere = only ? (only.bindings.some((b) => b.entity === entity) ? new Map([[only.role, 1]]) : undefined) : this.roles.get(entity);
    if (!rolesHere || rolesHere.size === 0) return { matchedAt: this.serial };
    let meta = await this.o.catalog.table(row.schema, row.table);
    const image = row.action === 'D' ? row.oldRecord : row.record;
    if (meta && image && Object.keys(image).some((k) => !meta!.columns.some((c) => c.name === k))) {
      this.o.catalog.invalidate(row.schema, row.table); // the table gained a column since we looked
      meta = await this.o.catalog.table(row.schema, row.table);
    }
    if (!meta) return { matchedAt: this.serial };
    const action = actionName(row.action);
    const item: WorkItem = { row, action, meta, visible: [], pending: [], errors: new Map(), errorBindings: [] };

    // Supabase answers INSERT/UPDATE on a table without a primary key, or whose key the
    // role may not read, with an error message to every subscriber of that role.
    if (action !== 'DELETE') {
      for (const role of rolesHere.keys()) {
        if (meta.primaryKey.length === 0) item.errors.set(role, ERROR_NO_PRIMARY_KEY);
        else {
          const readable = await this.o.catalog.readableColumns(meta, role);
          if (!meta.primaryKey.every((c) => readable.has(c))) item.errors.set(role, ERROR_UNAUTHORIZED);
        }
      }
      if (item.errors.size) {
        const all = only ? only.bindings.filter((b) => b.entity === entity && (b.action === '*' || b.action === action)) : this.index.all(entity, action);
        for (const b of all) if (b.sub.active && item.errors.has(b.sub.role)) item.errorBindings.push(b);
      }
    }

    this.stats.changes++;
    const matchedAt = this.serial;
    const candidates = only
      ? only.bindings.filter((b) => b.entity === entity && (b.action === '*' || b.action === action))
      : this.index.candidates(entity, action, image ?? undefined);
    for (const b of candidates) {
      this.stats.candidates++;
      if (!b.sub.active || item.errors.has(b.sub.role)) continue;
      const verdict = evaluateFilters(b.filters, image ?? undefined, this.o.match);
      if (verdict.kind === 'visible') item.visible.push(b);
      else if (verdict.kind === 'db') item.pending.push({ binding: b, predicates: verdict.predicates });
    }
    return { item, matchedAt };
  }

  /** The database half of step 2: one query for every undecided condition of the window. */
  private async resolvePredicates(items: WorkItem[], predicates: DatabasePredicate[]): Promise<void> {
    const results = await evaluatePredicates(this.o.db, predicates);
    const verdict = new Map<DatabasePredicate, boolean | null>();
    predicates.forEach((p, i) => verdict.set(p, results[i] ?? null));
    for (const item of items) {
      for (const p of item.pending) if (p.predicates.every((q) => verdict.get(q) === true)) item.visible.push(p.binding);
      item.pending = [];
    }
  }

  /** Step 3: one call per table for the window, one check per distinct claims inside it. */
  private async applyRls(items: WorkItem[]): Promise<void> {
    interface Group {
      meta: TableMeta;
      checks: Map<string, VisibilityCheck & { keyIndex: Map<string, number> }>;
      asked: { item: WorkItem; binding: FeedBinding; claimsKey: string; key: string }[];
    }
    const groups = new Map<string, Group>();
    for (const item of items) {
      if (!item.meta.rls || item.action === 'DELETE' || item.visible.length === 0) continue;
      const pkValues = item.meta.primaryKey.map((c) => valueText(item.row.record?.[c]));
      const key = JSON.stringify(pkValues);
      let group = groups.get(item.meta.entity);
      if (!group) groups.set(item.meta.entity, (group = { meta: item.meta, checks: new Map(), asked: [] }));
      for (const b of item.visible) {
        let check = group.checks.get(b.sub.claimsKey);
        if (!check) group.checks.set(b.sub.claimsKey, (check = { role: b.sub.role, claims: b.sub.claims, keys: [], keyIndex: new Map() }));
        if (!check.keyIndex.has(key)) {
          check.keyIndex.set(key, check.keys.length);
          check.keys.push(pkValues);
        }
        group.asked.push({ item, binding: b, claimsKey: b.sub.claimsKey, key });
      }
      item.visible = [];
    }
    for (const group of groups.values()) {
      const checks = [...group.checks.values()];
      this.stats.rlsQueries++;
      this.stats.rlsChecks += checks.length;
      const visible = await visibleKeys(
        this.o.db,
        group.meta,
        checks.map(({ role, claims, keys }) => ({ role, claims, keys })),
      );
      const position = new Map(checks.map((c, i) => [c, i]));
      for (const a of group.asked) {
        const check = group.checks.get(a.claimsKey)!;
        if (visible[position.get(check)!]!.has(check.keyIndex.get(a.key)!)) a.item.visible.push(a.binding);
      }
    }
  }

  /** Step 4: one payload per (role, select) and one `deliver` per channel and payload. */
  private async deliver(item: WorkItem): Promise<void> {
    const byChannel = new Map<FeedSubscription, Map<string, { data: ChangeData; ids: number[] }>>();
    const payloads = new Map<string, ChangeData>();
    const add = (b: FeedBinding, payloadKey: string, data: ChangeData): void => {
      let perSub = byChannel.get(b.sub);
      if (!perSub) byChannel.set(b.sub, (perSub = new Map()));
      const entry = perSub.get(payloadKey);
      if (entry) {
        if (!entry.ids.includes(b.id)) entry.ids.push(b.id);
      } else perSub.set(payloadKey, { data, ids: [b.id] });
    };
    for (const b of item.errorBindings) {
      const key = `!${b.sub.role}`;
      let data = payloads.get(key);
      if (!data) payloads.set(key, (data = errorChangeData(item.row, item.errors.get(b.sub.role)!)));
      add(b, key, data);
    }
    for (const b of item.visible) {
      if (!b.sub.active) continue;
      const key = `${b.sub.role}\u0000${b.selectKey}`;
      let data = payloads.get(key);
      if (!data) {
        const readable = await this.o.catalog.readableColumns(item.meta, b.sub.role);
        payloads.set(key, (data = buildChangeData(item.row, item.meta, readable, b.select)));
      }
      add(b, key, data);
    }
    for (const [sub, perSub] of byChannel) {
      if (!sub.active) continue;
      for (const { data, ids } of perSub.values()) {
        this.stats.deliveries++;
        try {
          sub.deliver(ids, data, item.row.capturedAt);
        } catch (err) {
          this.o.log.error({ err, channel: sub.channel }, 'postgres_changes delivery failed');
        }
      }
    }
  }

  private observeLag(row: CapturedRow): void {
    const lag = Math.max(0, Date.now() - row.capturedAt) / 1000;
    this.o.metrics.changeFeedLag.observe(lag);
    this.o.metrics.changeFeedLagLast.set(lag);
  }

  private countRole(entity: string, role: string, delta: number): void {
    let m = this.roles.get(entity);
    if (!m) this.roles.set(entity, (m = new Map()));
    const n = (m.get(role) ?? 0) + delta;
    if (n > 0) m.set(role, n);
    else m.delete(role);
    if (m.size === 0) this.roles.delete(entity);
  }
}
