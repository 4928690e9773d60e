// The subscription index: finds the bindings a change may match without looking at the
// others. Bindings are grouped by table and by action (`*`, INSERT, UPDATE, DELETE); within
// a group, a binding with an equality filter (`col=eq.v`, or `col=in.(a,b)`) sits in a map
// under the key of each value, so a change looks up one key per indexed column. Bindings
// without one (no filter, range filters only, negations, types without exact keys) are
// scanned. The cost of a change is therefore proportional to the bindings that can match it,
// not to all bindings.
import type { ActionFilter, ChangeAction } from './filter.js';
import { indexKey, type ValueClass } from './matcher.js';

export interface IndexableBinding {
  /** `schema.table` as the change reports it (see `entityKey`). */
  readonly entity: string;
  readonly action: ActionFilter;
  /** Where the binding is filed, from `indexEntry(filters)`; null to be scanned. */
  readonly indexEntry: { column: string; cls: ValueClass; keys: string[] } | null;
}

export function entityKey(schema: string, table: string): string {
  return `${schema}\u0000${table}`;
}

interface ColumnIndex<B> {
  cls: ValueClass;
  byKey: Map<string, Set<B>>;
}

class ActionGroup<B> {
  readonly byColumn = new Map<string, ColumnIndex<B>>();
  readonly scan = new Set<B>();
  size = 0;
}

export class BindingIndex<B extends IndexableBinding> {
  private readonly tables = new Map<string, Map<ActionFilter, ActionGroup<B>>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** True if any binding watches the table (cheap pre-check before decoding a change). */
  watches(entity: string): boolean {
    return this.tables.has(entity);
  }

  add(binding: B): void {
    let groups = this.tables.get(binding.entity);
    if (!groups) this.tables.set(binding.entity, (groups = new Map()));
    let group = groups.get(binding.action);
    if (!group) groups.set(binding.action, (group = new ActionGroup<B>()));
    const entry = binding.indexEntry;
    if (entry) {
      let col = group.byColumn.get(entry.column);
      if (!col) group.byColumn.set(entry.column, (col = { cls: entry.cls, byKey: new Map() }));
      for (const key of entry.keys) {
        let set = col.byKey.get(key);
        if (!set) col.byKey.set(key, (set = new Set()));
        set.add(binding);
      }
    } else {
      group.scan.add(binding);
    }
    group.size++;
    this.count++;
  }

  remove(binding: B): void {
    const groups = this.tables.get(binding.entity);
    const group = groups?.get(binding.action);
    if (!groups || !group) return;
    const entry = binding.indexEntry;
    let removed = false;
    if (entry) {
      const col = group.byColumn.get(entry.column);
      for (const key of entry.keys) {
        const set = col?.byKey.get(key);
        if (set?.delete(binding)) removed = true;
        if (set && set.size === 0) col!.byKey.delete(key);
      }
      if (col && col.byKey.size === 0) group.byColumn.delete(entry.column);
    } else {
      removed = group.scan.delete(binding);
    }
    if (!removed) return;
    this.count--;
    if (--group.size === 0) groups.delete(binding.action);
    if (groups.size === 0) this.tables.delete(binding.entity);
  }

  /**
   * The bindings that may match a change: those filed under the key of the image's value
   * in an indexed column, plus the scanned ones, for `*` and for the change's action.
   */
  candidates(entity: string, action: ChangeAction, image: Record<string, unknown> | undefined): Set<B> {
    const out = new Set<B>();
    const groups = this.tables.get(entity);
    if (!groups) return out;
    for (const group of [groups.get('*'), groups.get(action)]) {
      if (!group) continue;
      if (image) {
        for (const [column, col] of group.byColumn) {
          if (!Object.prototype.hasOwnProperty.call(image, column)) continue;
          const key = indexKey(col.cls, image[column]);
          if (key === undefined) continue;
          const set = col.byKey.get(key);
          if (set) for (const b of set) out.add(b);
        }
      }
      for (const b of group.scan) out.add(b);
    }
    return out;
  }

  /** Every binding on a table for an action, filters ignored (Supabase's 400/401 error fan-out). */
  all(entity: string, action: ChangeAction): Set<B> {
    const out = new Set<B>();
    const groups = this.tables.get(entity);
    if (!groups) return out;
    for (const group of [groups.get('*'), groups.get(action)]) {
      if (!group) continue;
      for (const col of group.byColumn.values()) for (const set of col.byKey.values()) for (const b of set) out.add(b);
      for (const b of group.scan) out.add(b);
    }
    return out;
  }
}
