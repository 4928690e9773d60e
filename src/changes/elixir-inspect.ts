// Renders values the way Elixir's `inspect/1` does. Supabase Realtime builds several
// postgres_changes error messages by inspecting Elixir terms (the unparsable pieces of a
// filter, the bindings it could not subscribe), and clients match on that text, so we
// reproduce it for the shapes those messages contain: strings, numbers, booleans, nil,
// lists, tuples and string-keyed maps.

/** A tuple, which JSON has no way to express; only used to build messages. */
export class ElixirTuple {
  constructor(readonly items: unknown[]) {}
}

export function inspect(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return inspectString(value);
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : formatFloat(value);
  if (typeof value === 'boolean') return String(value);
  if (value instanceof ElixirTuple) return `{${value.items.map(inspect).join(', ')}}`;
  if (Array.isArray(value)) return `[${value.map(inspect).join(', ')}]`;
  if (typeof value === 'object') {
    // Small Elixir maps print their keys in term order; for string keys that is byte order.
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (Buffer.from(a) < Buffer.from(b) ? -1 : a === b ? 0 : 1));
    return `%{${entries.map(([k, v]) => `${inspectString(k)} => ${inspect(v)}`).join(', ')}}`;
  }
  return inspectString(String(value));
}

function formatFloat(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const s = String(n);
  return s.includes('.') || s.includes('e') ? s.replace(/e\+?/, 'e') : `${s}.0`;
}

const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\f': '\\f', '\b': '\\b', '\v': '\\v', '\x07': '\\a', '\x1b': '\\e', '\0': '\\0' };

function inspectString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '#' && s[i + 1] === '{') out += '\\#';
    else if (ESCAPES[ch] !== undefined) out += ESCAPES[ch];
    else if (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f) out += `\\x${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
    else out += ch;
  }
  return out + '"';
}
