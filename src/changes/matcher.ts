// Evaluates parsed filters against a row image, with PostgreSQL's semantics.
//
// Row images and filter values are both in the form `to_jsonb()` gives them (the capture
// trigger stores `to_jsonb(NEW)`, and subscribe normalizes each filter value with
// `to_jsonb(value::column_type)` in the database), so equal SQL values have equal JSON
// forms. On top of that each column type belongs to a class that says which comparisons
// are exact in JavaScript: numbers compare as numbers, timestamps chronologically, text by
// code point when the database collation is C, and so on. Anything this module cannot
// decide exactly (regular expressions, ordering of enums, jsonb, ranges, text under a
// linguistic collation, NaN...) is answered `'db'`: the dispatcher asks the database, in
// one batched query per change window, exactly as Supabase's `check_equality_op` would.
//
// Three-valued logic as in SQL: a comparison with NULL is unknown, `not.` keeps unknown
// unknown, and a row is visible only when every condition is true.
import type { FilterOperator } from './filter.js';

/** How values of a column type are compared in JavaScript. */
export type ValueClass = 'number' | 'bool' | 'string' | 'bpchar' | 'temporal' | 'label' | 'other';

const CLASS_BY_TYPE: Record<string, ValueClass> = {
  int2: 'number',
  int4: 'number',
  int8: 'number',
  float4: 'number',
  float8: 'number',
  numeric: 'number',
  oid: 'number',
  bool: 'bool',
  text: 'string',
  varchar: 'string',
  name: 'string',
  uuid: 'string',
  char: 'string',
  bpchar: 'bpchar',
  date: 'temporal',
  timestamp: 'temporal',
  timestamptz: 'temporal',
  time: 'temporal',
};

/** The class of a column from its base type's `typname` and `typtype` (`e` = enum). */
export function valueClass(typname: string, typtype: string): ValueClass {
  if (typtype === 'e') return 'label';
  return CLASS_BY_TYPE[typname] ?? 'other';
}

export interface PreparedFilter {
  column: string;
  op: FilterOperator;
  negate: boolean;
  /** The value as PostgreSQL reads it (`{a,b}` for `in`); used when the database decides. */
  text: string;
  /** The normalized value: `to_jsonb(text::type)`, an array of them for `in`, the keyword for `is`. */
  value: unknown;
  cls: ValueClass;
  /** The column's SQL type (`bigint`, `character varying`), for casts in database checks. */
  sqlType: string;
  /** Compiled LIKE/ILIKE pattern, built on first use. */
  pattern?: RegExp | null;
}

export interface MatchOptions {
  /** True when the database orders text by code point (collation C, POSIX, C.UTF-8). */
  codePointCollation: boolean;
}

/** A condition the database has to evaluate: column value text vs. filter (see `realtime.fanout_check_filter`). */
export interface DatabasePredicate {
  filter: PreparedFilter;
  /** The row's value as text (`#>> '{}'` of its JSON form), or null. */
  valueText: string | null;
}

export type FilterVerdict = { kind: 'visible' } | { kind: 'hidden' } | { kind: 'db'; predicates: DatabasePredicate[] };

const VISIBLE: FilterVerdict = { kind: 'visible' };
const HIDDEN: FilterVerdict = { kind: 'hidden' };

/**
 * Whether `image` passes every filter. A filter on a column the image lacks hides the row
 * (a DELETE's old record has only the primary key unless the table is REPLICA IDENTITY FULL).
 */
export function evaluateFilters(filters: readonly PreparedFilter[], image: Record<string, unknown> | undefined, options: MatchOptions): FilterVerdict {
  if (filters.length === 0) return VISIBLE;
  if (!image) return HIDDEN;
  let pending: DatabasePredicate[] | undefined;
  for (const f of filters) {
    if (!Object.prototype.hasOwnProperty.call(image, f.column)) return HIDDEN;
    const v = image[f.column];
    const r = evaluateFilter(f, v, options);
    if (r === 'db') (pending ??= []).push({ filter: f, valueText: valueText(v) });
    else if (r !== true) return HIDDEN;
  }
  return pending ? { kind: 'db', predicates: pending } : VISIBLE;
}

/** One condition: true, false, null (unknown) or 'db' when only the database can say. */
export function evaluateFilter(f: PreparedFilter, v: unknown, options: MatchOptions): boolean | null | 'db' {
  const r = evaluatePositive(f, v, options);
  if (r === 'db' || r === null || !f.negate) return r;
  return !r;
}

function evaluatePositive(f: PreparedFilter, v: unknown, options: MatchOptions): boolean | null | 'db' {
  switch (f.op) {
    case 'is':
      // The keyword was validated at subscribe: null for any column, true/false/unknown for booleans.
      if (f.value === 'null' || f.value === 'unknown') return v === null;
      return v === (f.value === 'true');
    case 'isdistinct': {
      if (v === null) return true; // the filter value is never NULL
      const eq = equals(f.cls, v, f.value);
      return eq === undefined ? 'db' : !eq;
    }
    case 'match':
    case 'imatch':
      return v === null ? null : 'db';
    default:
      break;
  }
  if (v === null) return null;
  switch (f.op) {
    case 'eq':
    case 'neq': {
      const eq = equals(f.cls, v, f.value);
      if (eq === undefined) return 'db';
      return f.op === 'eq' ? eq : !eq;
    }
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte': {
      const c = order(f.cls, v, f.value, options);
      if (c === undefined) return 'db';
      return f.op === 'lt' ? c < 0 : f.op === 'lte' ? c <= 0 : f.op === 'gt' ? c > 0 : c >= 0;
    }
    case 'in': {
      // x = ANY(array): true on a match, else unknown if the array holds a NULL, else false.
      let sawNull = false;
      for (const item of f.value as unknown[]) {
        if (item === null) {
          sawNull = true;
          continue;
        }
        const eq = equals(f.cls, v, item);
        if (eq === undefined) return 'db';
        if (eq) return true;
      }
      return sawNull ? null : false;
    }
    case 'like':
    case 'ilike': {
      if ((f.cls !== 'string' && f.cls !== 'bpchar') || typeof v !== 'string') return 'db';
      if (f.pattern === undefined) f.pattern = likePattern(String(f.value), f.op === 'ilike');
      if (f.pattern === null) return 'db';
      return f.pattern.test(f.cls === 'bpchar' ? trimPadding(v) : v);
    }
    default:
      return 'db';
  }
}

/** Equality of two normalized values of one class, or undefined when JavaScript cannot tell exactly. */
export function equals(cls: ValueClass, a: unknown, b: unknown): boolean | undefined {
  switch (cls) {
    case 'number':
      return isFiniteNumber(a) && isFiniteNumber(b) ? a === b : undefined;
    case 'bool':
      return typeof a === 'boolean' && typeof b === 'boolean' ? a === b : undefined;
    case 'string':
    case 'label':
    case 'temporal':
      return typeof a === 'string' && typeof b === 'string' ? a === b : undefined;
    case 'bpchar':
      return typeof a === 'string' && typeof b === 'string' ? trimPadding(a) === trimPadding(b) : undefined;
    default:
      return undefined;
  }
}

/** Sign of a−b for two normalized values of one class, or undefined when JavaScript cannot tell exactly. */
export function order(cls: ValueClass, a: unknown, b: unknown, options: MatchOptions): number | undefined {
  switch (cls) {
    case 'number':
      return isFiniteNumber(a) && isFiniteNumber(b) ? Math.sign(a - b) : undefined;
    case 'bool':
      return typeof a === 'boolean' && typeof b === 'boolean' ? Number(a) - Number(b) : undefined;
    case 'string':
      return options.codePointCollation && typeof a === 'string' && typeof b === 'string' ? compareCodePoints(a, b) : undefined;
    case 'bpchar':
      return options.codePointCollation && typeof a === 'string' && typeof b === 'string' ? compareCodePoints(trimPadding(a), trimPadding(b)) : undefined;
    case 'temporal':
      return comparableTemporal(a, b) ? compareCodePoints(a as string, b as string) : undefined;
    default:
      return undefined;
  }
}

/**
 * `to_jsonb` writes dates, times and timestamps in fixed-width ISO form (fraction digits
 * trimmed), so two of them sort chronologically as strings — when both are AD years of
 * four digits and carry the same UTC offset. Anything else (infinity, BC, other offsets)
 * goes to the database.
 */
const TEMPORAL = /^(?:\d{4}-\d\d-\d\d(?:T\d\d:\d\d:\d\d(?:\.\d{1,6})?)?|\d\d:\d\d:\d\d(?:\.\d{1,6})?)([+-]\d\d:\d\d(?::\d\d)?)?$/;

function comparableTemporal(a: unknown, b: unknown): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const ma = TEMPORAL.exec(a);
  const mb = TEMPORAL.exec(b);
  return !!ma && !!mb && ma[1] === mb[1];
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** `character(n)` compares without its trailing padding. */
function trimPadding(s: string): string {
  return s.replace(/ +$/, '');
}

/** Code-point order (what collation C gives), which UTF-16 `<` does not for astral characters. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(i)!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    if (ca > 0xffff) i++;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** LIKE → RegExp: `%` any run, `_` one character, backslash escapes; null for a pattern PostgreSQL rejects. */
export function likePattern(pattern: string, caseInsensitive: boolean): RegExp | null {
  let src = '^';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '\\') {
      if (i + 1 >= chars.length) return null; // "LIKE pattern must not end with escape character"
      src += escapeRegExp(chars[++i]!);
    } else if (ch === '%') src += '.*';
    else if (ch === '_') src += '.';
    else src += escapeRegExp(ch);
  }
  return new RegExp(src + '$', caseInsensitive ? 'isu' : 'su');
}

function escapeRegExp(ch: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(ch) ? `\\${ch}` : ch;
}

/** The text PostgreSQL would read for a JSON value (`#>> '{}'`). */
export function valueText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * The index key of a value: equal SQL values get equal keys. Undefined for values whose
 * equality JavaScript cannot decide (they are never indexed).
 */
export function indexKey(cls: ValueClass, v: unknown): string | undefined {
  switch (cls) {
    case 'number':
      return isFiniteNumber(v) ? `n${v}` : undefined;
    case 'bool':
      return typeof v === 'boolean' ? `b${v}` : undefined;
    case 'string':
    case 'label':
    case 'temporal':
      return typeof v === 'string' ? `s${v}` : undefined;
    case 'bpchar':
      return typeof v === 'string' ? `s${trimPadding(v)}` : undefined;
    default:
      return undefined;
  }
}

/**
 * The keys under which a binding can be found by equality lookup: the first non-negated
 * `eq` or `in` filter whose values all have keys. Null when the binding must be scanned.
 */
export function indexEntry(filters: readonly PreparedFilter[]): { column: string; cls: ValueClass; keys: string[] } | null {
  for (const f of filters) {
    if (f.negate) continue;
    if (f.op === 'eq') {
      const key = indexKey(f.cls, f.value);
      if (key !== undefined) return { column: f.column, cls: f.cls, keys: [key] };
    } else if (f.op === 'in' && Array.isArray(f.value)) {
      const keys: string[] = [];
      let ok = true;
      for (const item of f.value) {
        if (item === null) continue; // NULL never equals anything
        const key = indexKey(f.cls, item);
        if (key === undefined) {
          ok = false;
          break;
        }
        keys.push(key);
      }
      if (ok && keys.length) return { column: f.column, cls: f.cls, keys };
    }
  }
  return null;
}
