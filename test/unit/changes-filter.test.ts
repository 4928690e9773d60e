// The postgres_changes binding parser against Supabase's behaviour (the doctests and
// clauses of subscriptions.ex `parse_subscription_params`), including its error texts.
import { describe, expect, it } from 'vitest';
import { describeParams, parseFilter, parseSubscriptionParams, splitTopLevel, unquoteValue } from '../../src/changes/filter.js';
import { inspect } from '../../src/changes/elixir-inspect.js';

const ok = (params: Record<string, unknown>) => {
  const r = parseSubscriptionParams(params);
  if (!r.ok) throw new Error(`expected ok, got ${r.error}`);
  return r.params;
};
const err = (params: Record<string, unknown>) => {
  const r = parseSubscriptionParams(params);
  if (r.ok) throw new Error(`expected an error, got ${JSON.stringify(r.params)}`);
  return r.error;
};

describe('parseSubscriptionParams', () => {
  it('parses schema, table and an eq filter', () => {
    expect(ok({ schema: 'public', table: 'messages', filter: 'subject=eq.hey' })).toEqual({
      event: '*',
      schema: 'public',
      table: 'messages',
      filters: [{ column: 'subject', op: 'eq', value: 'hey', negate: false }],
      select: null,
    });
  });

  it('turns an in list into an array literal', () => {
    expect(ok({ schema: 'public', table: 'messages', filter: 'subject=in.(hidee,ho)' }).filters).toEqual([{ column: 'subject', op: 'in', value: '{hidee,ho}', negate: false }]);
  });

  it('reads the not. prefix as negation, for any operator', () => {
    expect(ok({ schema: 'public', table: 'm', filter: 'subject=not.like.hey%' }).filters).toEqual([{ column: 'subject', op: 'like', value: 'hey%', negate: true }]);
    expect(ok({ schema: 'public', table: 'm', filter: 'status=not.in.(a,b)' }).filters).toEqual([{ column: 'status', op: 'in', value: '{a,b}', negate: true }]);
  });

  it('accepts every operator the client can send', () => {
    for (const op of ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'like', 'ilike', 'is', 'match', 'imatch', 'isdistinct']) {
      expect(ok({ schema: 'public', table: 't', filter: `c=${op}.v` }).filters[0]).toEqual({ column: 'c', op, value: 'v', negate: false });
    }
  });

  it('joins comma-separated conditions with AND', () => {
    expect(ok({ schema: 'public', table: 'm', filter: 'id=gt.0,id=lt.100' }).filters).toEqual([
      { column: 'id', op: 'gt', value: '0', negate: false },
      { column: 'id', op: 'lt', value: '100', negate: false },
    ]);
  });

  it('treats an empty or blank filter as no filter', () => {
    expect(ok({ schema: 'public', table: 'm', filter: '' }).filters).toEqual([]);
    expect(ok({ schema: 'public', table: 'm', filter: '   ' }).filters).toEqual([]);
    expect(ok({ schema: 'public', table: 'm' }).filters).toEqual([]);
  });

  it('fills in the table wildcard for a schema alone and public for a table alone', () => {
    expect(ok({ schema: 'public' })).toMatchObject({ schema: 'public', table: '*' });
    expect(ok({ table: 'messages' })).toMatchObject({ schema: 'public', table: 'messages' });
  });

  it('maps the event case-insensitively, anything else to *', () => {
    expect(ok({ event: 'insert', schema: 'public' }).event).toBe('INSERT');
    expect(ok({ event: 'Update', schema: 'public' }).event).toBe('UPDATE');
    expect(ok({ event: 'DELETE', schema: 'public' }).event).toBe('DELETE');
    expect(ok({ event: 'TRUNCATE', schema: 'public' }).event).toBe('*');
    expect(ok({ event: 5, schema: 'public' }).event).toBe('*');
    expect(ok({ schema: 'public' }).event).toBe('*');
  });

  it("reports an unknown operator with the server's wording", () => {
    expect(err({ schema: 'public', table: 'messages', filter: 'subject=foo.hey' })).toBe('Error parsing `filter` params: ["foo", "hey"]');
  });

  it('reports a filter without = or without an operator', () => {
    expect(err({ schema: 'public', table: 'messages', filter: 'undefined' })).toBe('Error parsing `filter` params: ["undefined"]');
    expect(err({ schema: 'public', table: 'messages', filter: 'id=eq' })).toBe('Error parsing `filter` params: ["eq"]');
  });

  it('requires parentheses around in values', () => {
    expect(err({ schema: 'public', table: 'm', filter: 'id=in.1,2' })).toBe('Error parsing `filter` params: `in` filter value must be wrapped by parentheses');
    expect(err({ schema: 'public', table: 'm', filter: 'id=in.(' })).toBe('Error parsing `filter` params: `in` filter value must be wrapped by parentheses');
  });

  it('rejects empty segments', () => {
    expect(err({ schema: 'public', table: 'm', filter: 'id=eq.1,,id=eq.2' })).toBe('Error parsing `filter` params: filter must not contain empty segments (check for extra commas)');
    expect(err({ schema: 'public', table: 'm', filter: 'id=eq.1,' })).toBe('Error parsing `filter` params: filter must not contain empty segments (check for extra commas)');
  });

  it('reports missing schema and table with the params inspected', () => {
    expect(err({})).toBe('No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: %{}');
    expect(err({ event: '*', schema: 'public', table: 't', filter: null })).toBe(
      'No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: %{"event" => "*", "filter" => nil, "schema" => "public", "table" => "t"}',
    );
    // A filter needs both schema and table.
    expect(err({ table: 't', filter: 'id=eq.1' })).toMatch(/^No subscription params provided/);
  });

  it('redacts tokens that were put among the params', () => {
    expect(err({ user_token: 'secret-jwt' })).toBe('No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: <redacted>');
  });

  it('takes select as a list of strings, rejects a string, and refuses it on wildcards', () => {
    expect(ok({ schema: 'public', table: 't', select: ['a', 1, 'b'] }).select).toEqual(['a', 'b']);
    expect(ok({ schema: 'public', table: 't', select: [] }).select).toBeNull();
    expect(err({ schema: 'public', table: 't', select: 'a,b' })).toBe('Error parsing `select` params: expected a list of column name strings, e.g. select: ["col1", "col2"]');
    expect(err({ schema: 'public', select: ['a'] })).toBe('Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name.');
  });
});

describe('quoted values', () => {
  it('keeps commas inside double quotes and parentheses together', () => {
    expect(splitTopLevel('name=eq."a,b",id=eq.1')).toEqual(['name=eq."a,b"', 'id=eq.1']);
    expect(splitTopLevel('name=in.("a,b",c),id=eq.1')).toEqual(['name=in.("a,b",c)', 'id=eq.1']);
    expect(splitTopLevel('id=in.(1,2),x=eq.3')).toEqual(['id=in.(1,2)', 'x=eq.3']);
  });

  it('only opens a quote after . ( or , as the server does', () => {
    expect(splitTopLevel('a"b=eq.x,y=eq.z')).toEqual(['a"b=eq.x', 'y=eq.z']);
  });

  it('honours backslash escapes inside quotes', () => {
    expect(splitTopLevel('name=eq."a\\",b",id=eq.1')).toEqual(['name=eq."a\\",b"', 'id=eq.1']);
    expect(parseFilter('name=eq."a\\",b"')).toEqual({ ok: true, filters: [{ column: 'name', op: 'eq', value: 'a",b', negate: false }] });
  });

  it('unquotes a well-formed quoted value and leaves anything else as written', () => {
    expect(unquoteValue('"a,b"')).toBe('a,b');
    expect(unquoteValue('"a\\\\b"')).toBe('a\\b');
    expect(unquoteValue('"a"b"')).toBe('"a"b"');
    expect(unquoteValue('"open')).toBe('"open');
    expect(unquoteValue('plain')).toBe('plain');
  });

  it('passes quoted in-list elements on to the array literal', () => {
    expect(parseFilter('name=in.("a,b",c)')).toEqual({ ok: true, filters: [{ column: 'name', op: 'in', value: '{"a,b",c}', negate: false }] });
  });
});

describe('describeParams', () => {
  it('prints params as the server logs them', () => {
    const p = ok({ event: 'INSERT', schema: 'public', table: 'todos', filter: 'project_id=eq.7' });
    expect(describeParams(p)).toBe('event: INSERT, schema: public, table: todos, filters: [{"project_id", "eq", "7", false}], select: nil');
    expect(describeParams(ok({ schema: 'public', table: 't', select: ['b', 'a'] }))).toBe('event: *, schema: public, table: t, filters: [], select: ["b", "a"]');
  });
});

describe('inspect', () => {
  it('renders terms as Elixir does', () => {
    expect(inspect(['a', 1, 1.5, true, null])).toBe('["a", 1, 1.5, true, nil]');
    expect(inspect('say "hi"\n#{x}')).toBe('"say \\"hi\\"\\n\\#{x}"');
    expect(inspect({ b: 1, a: [2] })).toBe('%{"a" => [2], "b" => 1}');
  });
});
