// Parses one `postgres_changes` binding from a `phx_join` (event, schema, table, filter,
// select) the way Supabase Realtime does, with its error messages (reference §5.3;
// server: lib/extensions/postgres_cdc_rls/subscriptions.ex `parse_subscription_params`).
//
// Filter grammar (PostgREST style): `column=[not.]operator.value`, several conditions
// joined by commas meaning AND. Commas inside double quotes or parentheses do not split.
// `in` takes a parenthesised list that becomes a PostgreSQL array literal `{a,b}`; other
// values may be double-quoted with backslash escapes.
import { ElixirTuple, inspect } from './elixir-inspect.js';
import type { PostgresChangesParams } from './types.js';

export const FILTER_OPERATORS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in', 'like', 'ilike', 'is', 'match', 'imatch', 'isdistinct'] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

export type ChangeAction = 'INSERT' | 'UPDATE' | 'DELETE';
export type ActionFilter = '*' | ChangeAction;

export interface ParsedFilter {
  column: string;
  op: FilterOperator;
  /** The value as the database will read it: unquoted, or `{a,b}` for `in`. */
  value: string;
  /** The `not.` prefix. */
  negate: boolean;
}

export interface SubscriptionParams {
  event: ActionFilter;
  /** A schema name or `*`. */
  schema: string;
  /** A table name or `*`. */
  table: string;
  filters: ParsedFilter[];
  /** Column names from `select`, or null for every column. */
  select: string[] | null;
}

export type ParseResult = { ok: true; params: SubscriptionParams } | { ok: false; error: string };

const OPERATORS = new Set<string>(FILTER_OPERATORS);

export function parseSubscriptionParams(params: PostgresChangesParams): ParseResult {
  const event = actionFilter(params.event);
  const select = parseSelect(params);
  if (!select.ok) return select;
  const has = (key: string): boolean => Object.prototype.hasOwnProperty.call(params, key);
  const { schema, table, filter } = params;

  const done = (s: string, t: string, filters: ParsedFilter[]): ParseResult => {
    if (select.value && (s === '*' || t === '*')) {
      return { ok: false, error: 'Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name.' };
    }
    return { ok: true, params: { event, schema: s, table: t, filters, select: select.value } };
  };

  if (typeof schema === 'string' && typeof table === 'string' && typeof filter === 'string') {
    const parsed = parseFilter(filter);
    if (!parsed.ok) return { ok: false, error: `Error parsing \`filter\` params: ${parsed.error}` };
    return done(schema, table, parsed.filters);
  }
  if (typeof schema === 'string' && typeof table === 'string' && !has('filter')) return done(schema, table, []);
  if (typeof schema === 'string' && !has('table') && !has('filter')) return done(schema, '*', []);
  if (typeof table === 'string' && !has('schema') && !has('filter')) return done('public', table, []);
  const shown = has('user_token') || has('auth_token') ? '<redacted>' : inspect(params);
  return { ok: false, error: `No subscription params provided. Please provide at least a \`schema\` or \`table\` to subscribe to: ${shown}` };
}

function actionFilter(event: unknown): ActionFilter {
  if (typeof event !== 'string') return '*';
  const upper = event.toUpperCase();
  return upper === 'INSERT' || upper === 'UPDATE' || upper === 'DELETE' ? upper : '*';
}

function parseSelect(params: PostgresChangesParams): { ok: true; value: string[] | null } | { ok: false; error: string } {
  const { select } = params;
  if (Array.isArray(select)) {
    const names = select.filter((c): c is string => typeof c === 'string');
    return { ok: true, value: names.length ? names : null };
  }
  if (typeof select === 'string') {
    return { ok: false, error: 'Error parsing `select` params: expected a list of column name strings, e.g. select: ["col1", "col2"]' };
  }
  return { ok: true, value: null };
}

export function parseFilter(filter: string): { ok: true; filters: ParsedFilter[] } | { ok: false; error: string } {
  const trimmed = filter.trim();
  if (trimmed === '') return { ok: true, filters: [] };
  const filters: ParsedFilter[] = [];
  for (const segment of splitTopLevel(trimmed)) {
    const parsed = parseSegment(segment);
    if (!parsed.ok) return parsed;
    filters.push(parsed.filter);
  }
  return { ok: true, filters };
}

/**
 * Splits on commas that are outside double quotes and parentheses. As in the server, a
 * double quote only opens a quoted run right after `.`, `(` or `,`; inside one a
 * backslash escapes the next character.
 */
export function splitTopLevel(filter: string): string[] {
  const out: string[] = [];
  let current = '';
  let depth = 0;
  let quoted = false;
  let prev = '';
  for (let i = 0; i < filter.length; i++) {
    const ch = filter[i]!;
    if (quoted) {
      if (ch === '\\' && i + 1 < filter.length) {
        current += ch + filter[i + 1]!;
        prev = filter[++i]!;
      } else {
        current += ch;
        if (ch === '"') quoted = false;
        prev = ch;
      }
      continue;
    }
    if (ch === '"' && (prev === '.' || prev === '(' || prev === ',')) {
      quoted = true;
      current += ch;
      prev = ch;
    } else if (ch === '(') {
      depth++;
      current += ch;
      prev = ch;
    } else if (ch === ')') {
      depth = Math.max(0, depth - 1);
      current += ch;
      prev = ch;
    } else if (ch === ',' && depth === 0) {
      out.push(current);
      current = '';
      prev = '';
    } else {
      current += ch;
      prev = ch;
    }
  }
  out.push(current);
  return out;
}

function parseSegment(segment: string): { ok: true; filter: ParsedFilter } | { ok: false; error: string } {
  const trimmed = segment.trim();
  if (trimmed === '') return { ok: false, error: 'filter must not contain empty segments (check for extra commas)' };
  const eq = trimmed.indexOf('=');
  if (eq < 0) return { ok: false, error: inspect([trimmed]) };
  const column = trimmed.slice(0, eq);
  let rest = trimmed.slice(eq + 1);
  const negate = rest.startsWith('not.');
  if (negate) rest = rest.slice(4);
  const dot = rest.indexOf('.');
  if (dot < 0) return { ok: false, error: inspect([rest]) };
  const op = rest.slice(0, dot);
  const raw = rest.slice(dot + 1);
  if (!OPERATORS.has(op)) return { ok: false, error: inspect([op, raw]) };
  if (op === 'in') {
    if (raw.length < 2 || !raw.startsWith('(') || !raw.endsWith(')')) return { ok: false, error: '`in` filter value must be wrapped by parentheses' };
    return { ok: true, filter: { column, op, value: `{${raw.slice(1, -1)}}`, negate } };
  }
  return { ok: true, filter: { column, op: op as FilterOperator, value: unquoteValue(raw), negate } };
}

/** `"a\"b"` → `a"b`; a value that is not one well-formed quoted string is kept as written. */
export function unquoteValue(value: string): string {
  if (!value.startsWith('"')) return value;
  let out = '';
  for (let i = 1; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '"') return i === value.length - 1 ? out : value;
    if (ch === '\\' && i + 1 < value.length) out += value[++i]!;
    else out += ch;
  }
  return value;
}

/**
 * The parameters as Supabase prints them in "Unable to subscribe ..." messages:
 * `event: *, schema: public, table: todos, filters: [{"id", "eq", "1", false}], select: nil`.
 */
export function describeParams(p: SubscriptionParams): string {
  const filters = p.filters.map((f) => new ElixirTuple([f.column, f.op, f.value, f.negate]));
  return `event: ${p.event}, schema: ${p.schema}, table: ${p.table}, filters: ${inspectPretty(filters)}, select: ${inspectPretty(p.select)}`;
}

/** `inspect(value, pretty: true)`: a list wider than 80 columns is printed one element per line. */
function inspectPretty(value: unknown): string {
  const flat = inspect(value);
  if (flat.length <= 80 || !Array.isArray(value)) return flat;
  return `[\n${value.map((v) => `  ${inspect(v)}`).join(',\n')}\n]`;
}
