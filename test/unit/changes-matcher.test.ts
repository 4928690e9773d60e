// Filter evaluation with PostgreSQL's semantics: type-correct comparison, three-valued
// logic with NULL, and 'db' wherever JavaScript cannot be exact.
import { describe, expect, it } from 'vitest';
import { compareCodePoints, evaluateFilter, evaluateFilters, likePattern, valueClass, type PreparedFilter, type ValueClass } from '../../src/changes/matcher.js';
import type { FilterOperator } from '../../src/changes/filter.js';

const C = { codePointCollation: true };
const LINGUISTIC = { codePointCollation: false };

function f(op: FilterOperator, value: unknown, cls: ValueClass = 'number', negate = false, column = 'c'): PreparedFilter {
  return { column, op, negate, text: Array.isArray(value) ? `{${value.join(',')}}` : String(value), value, cls, sqlType: cls };
}
const ev = (filter: PreparedFilter, v: unknown, o = C) => evaluateFilter(filter, v, o);

describe('value classes', () => {
  it('classifies column types by their base type', () => {
    expect(valueClass('int8', 'b')).toBe('number');
    expect(valueClass('numeric', 'b')).toBe('number');
    expect(valueClass('text', 'b')).toBe('string');
    expect(valueClass('uuid', 'b')).toBe('string');
    expect(valueClass('bpchar', 'b')).toBe('bpchar');
    expect(valueClass('timestamptz', 'b')).toBe('temporal');
    expect(valueClass('mood', 'e')).toBe('label');
    expect(valueClass('jsonb', 'b')).toBe('other');
    expect(valueClass('citext', 'b')).toBe('other');
  });
});

describe('comparisons', () => {
  it('compares numbers as numbers, not as text', () => {
    expect(ev(f('gt', 9), 10)).toBe(true);
    expect(ev(f('lt', 9), 10)).toBe(false);
    expect(ev(f('gte', 10), 10)).toBe(true);
    expect(ev(f('lte', 10), 10.5)).toBe(false);
    expect(ev(f('eq', 7), 7)).toBe(true);
    expect(ev(f('neq', 7), 7)).toBe(false);
    expect(ev(f('eq', 0.1 + 0.2), 0.30000000000000004)).toBe(true);
  });

  it('leaves NaN and infinities (strings in JSON) to the database', () => {
    expect(ev(f('gt', 1), 'NaN')).toBe('db');
    expect(ev(f('eq', 'Infinity'), 5)).toBe('db');
  });

  it('compares booleans', () => {
    expect(ev(f('eq', true, 'bool'), true)).toBe(true);
    expect(ev(f('gt', false, 'bool'), true)).toBe(true);
  });

  it('orders text by code point under collation C, and asks the database otherwise', () => {
    expect(ev(f('lt', 'b', 'string'), 'B')).toBe(true); // 'B' (66) < 'b' (98)
    expect(ev(f('lt', 'b', 'string'), 'B', LINGUISTIC)).toBe('db');
    expect(ev(f('eq', 'b', 'string'), 'b', LINGUISTIC)).toBe(true); // equality needs no collation
    expect(compareCodePoints('\u{1F600}', '\uFFFF')).toBe(1); // UTF-16 '<' would say -1
    expect(ev(f('gt', '\uFFFF', 'string'), '\u{1F600}')).toBe(true);
  });

  it('ignores character(n) padding', () => {
    expect(ev(f('eq', 'ab', 'bpchar'), 'ab  ')).toBe(true);
    expect(ev(f('lt', 'ab ', 'bpchar'), 'ab')).toBe(false);
  });

  it('orders timestamps chronologically, fractions included', () => {
    const cls = 'temporal';
    expect(ev(f('lt', '2024-01-01T00:00:00.5+00:00', cls), '2024-01-01T00:00:00+00:00')).toBe(true);
    expect(ev(f('gt', '2024-01-01T00:00:00.5+00:00', cls), '2024-01-01T00:00:00.51+00:00')).toBe(true);
    expect(ev(f('gt', '2024-01-01T09:59:59', cls), '2024-01-01T10:00:00')).toBe(true);
    expect(ev(f('gte', '2024-02-01', cls), '2024-01-31')).toBe(false);
    expect(ev(f('lt', '10:00:00', cls), '09:30:00.25')).toBe(true);
    // Different offsets, infinity or BC are left to the database.
    expect(ev(f('lt', '2024-01-01T00:00:00+01:00', cls), '2024-01-01T00:00:00+00:00')).toBe('db');
    expect(ev(f('lt', 'infinity', cls), '2024-01-01')).toBe('db');
  });

  it('compares enum labels for equality and leaves their order to the database', () => {
    expect(ev(f('eq', 'happy', 'label'), 'happy')).toBe(true);
    expect(ev(f('lt', 'happy', 'label'), 'sad')).toBe('db');
  });

  it('leaves other types (jsonb, arrays, citext, ranges) to the database', () => {
    expect(ev(f('eq', { a: 1 }, 'other'), { a: 1 })).toBe('db');
  });
});

describe('NULL and negation', () => {
  it('makes comparisons with NULL unknown, and negation keeps them unknown', () => {
    expect(ev(f('eq', 1), null)).toBeNull();
    expect(ev(f('eq', 1, 'number', true), null)).toBeNull();
    expect(ev(f('neq', 1), null)).toBeNull();
    expect(ev(f('like', 'a%', 'string'), null)).toBeNull();
    expect(ev(f('match', 'a', 'string'), null)).toBeNull();
  });

  it('negates known results', () => {
    expect(ev(f('eq', 1, 'number', true), 1)).toBe(false);
    expect(ev(f('eq', 1, 'number', true), 2)).toBe(true);
    expect(ev(f('gt', 5, 'number', true), 6)).toBe(false);
  });

  it('implements is null / true / false / unknown', () => {
    expect(ev(f('is', 'null', 'string'), null)).toBe(true);
    expect(ev(f('is', 'null', 'string'), 'x')).toBe(false);
    expect(ev(f('is', 'null', 'string', true), 'x')).toBe(true);
    expect(ev(f('is', 'true', 'bool'), true)).toBe(true);
    expect(ev(f('is', 'true', 'bool'), null)).toBe(false);
    expect(ev(f('is', 'false', 'bool'), false)).toBe(true);
    expect(ev(f('is', 'unknown', 'bool'), null)).toBe(true);
    expect(ev(f('is', 'true', 'bool', true), null)).toBe(true); // IS NOT TRUE
  });

  it('implements is distinct from, where NULL is a value', () => {
    expect(ev(f('isdistinct', 1), null)).toBe(true);
    expect(ev(f('isdistinct', 1), 1)).toBe(false);
    expect(ev(f('isdistinct', 1), 2)).toBe(true);
    expect(ev(f('isdistinct', 1, 'number', true), null)).toBe(false);
    expect(ev(f('isdistinct', 1, 'number', true), 1)).toBe(true);
  });

  it('implements in as = ANY, including a NULL element', () => {
    expect(ev(f('in', [1, 2]), 2)).toBe(true);
    expect(ev(f('in', [1, 2]), 3)).toBe(false);
    expect(ev(f('in', [1, null]), 3)).toBeNull();
    expect(ev(f('in', [1, null]), 1)).toBe(true);
    expect(ev(f('in', [1, 2], 'number', true), 3)).toBe(true);
    expect(ev(f('in', [1, null], 'number', true), 3)).toBeNull();
  });
});

describe('like and ilike', () => {
  it('matches % and _ with backslash escapes', () => {
    expect(ev(f('like', 'he%', 'string'), 'hello')).toBe(true);
    expect(ev(f('like', 'he%', 'string'), 'HEllo')).toBe(false);
    expect(ev(f('ilike', 'he%', 'string'), 'HEllo')).toBe(true);
    expect(ev(f('like', 'h_llo', 'string'), 'hallo')).toBe(true);
    expect(ev(f('like', 'h_llo', 'string'), 'hllo')).toBe(false);
    expect(ev(f('like', '100\\%', 'string'), '100%')).toBe(true);
    expect(ev(f('like', '100\\%', 'string'), '1000')).toBe(false);
    expect(ev(f('like', 'a.c', 'string'), 'abc')).toBe(false); // regex characters are literal
    expect(ev(f('like', '%', 'string'), 'line1\nline2')).toBe(true);
  });

  it('counts characters, not UTF-16 units, for _', () => {
    expect(ev(f('like', 'a_b', 'string'), 'a\u{1F600}b')).toBe(true);
  });

  it('leaves a pattern ending in an escape to the database (which rejects it)', () => {
    expect(likePattern('abc\\', false)).toBeNull();
    expect(ev(f('like', 'abc\\', 'string'), 'abc')).toBe('db');
  });

  it('sends match and imatch (POSIX regular expressions) to the database', () => {
    expect(ev(f('match', '^a', 'string'), 'abc')).toBe('db');
    expect(ev(f('imatch', '^a', 'string'), 'abc')).toBe('db');
  });
});

describe('evaluateFilters', () => {
  it('needs every condition to hold (AND)', () => {
    const filters = [f('gt', 0, 'number', false, 'id'), f('lt', 100, 'number', false, 'id')];
    expect(evaluateFilters(filters, { id: 50 }, C)).toEqual({ kind: 'visible' });
    expect(evaluateFilters(filters, { id: 150 }, C)).toEqual({ kind: 'hidden' });
  });

  it('hides a row that lacks a filtered column (a DELETE with only its primary key)', () => {
    expect(evaluateFilters([f('eq', '7', 'string', false, 'project_id')], { id: 1 }, C)).toEqual({ kind: 'hidden' });
    expect(evaluateFilters([f('eq', '7', 'string', true, 'project_id')], { id: 1 }, C)).toEqual({ kind: 'hidden' });
  });

  it('shows everything without filters', () => {
    expect(evaluateFilters([], { id: 1 }, C)).toEqual({ kind: 'visible' });
    expect(evaluateFilters([], undefined, C)).toEqual({ kind: 'visible' });
  });

  it('asks the database only for what JavaScript cannot decide, and not at all once a condition fails', () => {
    const re = f('match', '^a', 'string', false, 'name');
    const pass = evaluateFilters([f('eq', 1, 'number', false, 'id'), re], { id: 1, name: 'abc' }, C);
    expect(pass).toEqual({ kind: 'db', predicates: [{ filter: re, valueText: 'abc' }] });
    expect(evaluateFilters([f('eq', 1, 'number', false, 'id'), re], { id: 2, name: 'abc' }, C)).toEqual({ kind: 'hidden' });
  });

  it('hands the database the value text PostgreSQL would read', () => {
    const other = f('eq', { a: 1 }, 'other', false, 'doc');
    expect(evaluateFilters([other], { doc: { a: 1 } }, C)).toEqual({ kind: 'db', predicates: [{ filter: other, valueText: '{"a":1}' }] });
  });
});
