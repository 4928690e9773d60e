// The subscription index: equality filters are map lookups, so a change's candidates are
// the bindings that can match it, not every binding on the table.
import { describe, expect, it } from 'vitest';
import { BindingIndex, entityKey, type IndexableBinding } from '../../src/changes/binding-index.js';
import { indexEntry, type PreparedFilter, type ValueClass } from '../../src/changes/matcher.js';
import type { ActionFilter, FilterOperator } from '../../src/changes/filter.js';

const T = entityKey('public', 'project_comments');

function filter(column: string, op: FilterOperator, value: unknown, cls: ValueClass = 'string', negate = false): PreparedFilter {
  return { column, op, value, negate, cls, text: String(value), sqlType: 'text' };
}

interface B extends IndexableBinding {
  name: string;
}

function binding(name: string, filters: PreparedFilter[], action: ActionFilter = '*', entity = T): B {
  return { name, entity, action, indexEntry: indexEntry(filters) };
}

const names = (set: Set<B>) => [...set].map((b) => b.name).sort();

describe('indexEntry', () => {
  it('files a binding under its first positive eq or in filter', () => {
    expect(indexEntry([filter('a', 'gt', 1, 'number'), filter('project_id', 'eq', '7')])).toEqual({ column: 'project_id', cls: 'string', keys: ['s7'] });
    expect(indexEntry([filter('id', 'in', [1, 2, null], 'number')])).toEqual({ column: 'id', cls: 'number', keys: ['n1', 'n2'] });
  });

  it('scans bindings whose filters cannot be keyed', () => {
    expect(indexEntry([])).toBeNull();
    expect(indexEntry([filter('id', 'eq', 1, 'number', true)])).toBeNull(); // not.eq
    expect(indexEntry([filter('id', 'gt', 1, 'number')])).toBeNull();
    expect(indexEntry([filter('doc', 'eq', { a: 1 }, 'other')])).toBeNull();
    expect(indexEntry([filter('id', 'in', [null], 'number')])).toBeNull();
  });
});

describe('BindingIndex', () => {
  it('finds only the bindings whose equality value matches, among many', () => {
    const index = new BindingIndex<B>();
    for (let p = 0; p < 10_000; p++) index.add(binding(`p${p}`, [filter('project_id', 'eq', String(p))]));
    expect(index.size).toBe(10_000);
    const hit = index.candidates(T, 'INSERT', { id: 1, project_id: '4242' });
    expect(names(hit)).toEqual(['p4242']);
    expect(index.candidates(T, 'INSERT', { id: 1, project_id: 'nope' }).size).toBe(0);
    expect(index.candidates(T, 'INSERT', { id: 1 }).size).toBe(0); // column absent (DELETE with PK only)
  });

  it('matches numerically equal values whatever their notation', () => {
    const index = new BindingIndex<B>();
    index.add(binding('seven', [filter('n', 'eq', 7, 'number')]));
    expect(names(index.candidates(T, 'UPDATE', { n: 7.0 }))).toEqual(['seven']);
    expect(index.candidates(T, 'UPDATE', { n: '7' }).size).toBe(0); // a string is not a number key
  });

  it('files an in filter under each of its values', () => {
    const index = new BindingIndex<B>();
    index.add(binding('in', [filter('id', 'in', [1, 2, 3], 'number')]));
    for (const id of [1, 2, 3]) expect(names(index.candidates(T, 'INSERT', { id }))).toEqual(['in']);
    expect(index.candidates(T, 'INSERT', { id: 4 }).size).toBe(0);
  });

  it('always returns scanned bindings, and only for their table', () => {
    const index = new BindingIndex<B>();
    index.add(binding('all', []));
    index.add(binding('range', [filter('id', 'gt', 10, 'number')]));
    index.add(binding('elsewhere', [], '*', entityKey('public', 'other')));
    index.add(binding('eq', [filter('project_id', 'eq', '1')]));
    expect(names(index.candidates(T, 'INSERT', { project_id: '2', id: 1 }))).toEqual(['all', 'range']);
    expect(names(index.candidates(T, 'INSERT', { project_id: '1', id: 1 }))).toEqual(['all', 'eq', 'range']);
  });

  it('keeps actions apart: an INSERT binding is no candidate for an UPDATE', () => {
    const index = new BindingIndex<B>();
    index.add(binding('ins', [], 'INSERT'));
    index.add(binding('upd', [], 'UPDATE'));
    index.add(binding('any', [], '*'));
    expect(names(index.candidates(T, 'UPDATE', {}))).toEqual(['any', 'upd']);
    expect(names(index.candidates(T, 'DELETE', {}))).toEqual(['any']);
  });

  it('treats character(n) padding as insignificant in keys', () => {
    const index = new BindingIndex<B>();
    index.add(binding('code', [filter('code', 'eq', 'ab', 'bpchar')]));
    expect(names(index.candidates(T, 'INSERT', { code: 'ab   ' }))).toEqual(['code']);
  });

  it('lists every binding of a table for an action regardless of filters', () => {
    const index = new BindingIndex<B>();
    index.add(binding('a', [filter('project_id', 'eq', '1')]));
    index.add(binding('b', [filter('id', 'gt', 1, 'number')], 'INSERT'));
    index.add(binding('c', [], 'DELETE'));
    expect(names(index.all(T, 'INSERT'))).toEqual(['a', 'b']);
  });

  it('forgets removed bindings completely', () => {
    const index = new BindingIndex<B>();
    const a = binding('a', [filter('id', 'in', [1, 2], 'number')]);
    const b = binding('b', []);
    index.add(a);
    index.add(b);
    index.remove(a);
    expect(index.candidates(T, 'INSERT', { id: 1 }).size).toBe(1);
    index.remove(b);
    index.remove(b); // twice is harmless
    expect(index.size).toBe(0);
    expect(index.watches(T)).toBe(false);
  });
});
