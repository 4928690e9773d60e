// Where a value sits inside a JSON text, so it can be passed on as the bytes it arrived
// in instead of being serialized again after `JSON.parse`. Only ever run on text that
// JSON.parse accepted, so it assumes valid JSON and does not validate. The scans jump from
// one structural character to the next with regular expressions (native string search),
// not a character loop in JavaScript.

/** A value's text: `text.slice(start, end)`. */
export interface Span {
  start: number;
  end: number;
}

const STRUCTURE = /["[\]{}]/g;
const STRING_END = /["\\]/g;
const LITERAL_END = /[\s,\]}]/g;

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** The index just past the string whose opening quote is at `i`. */
function stringEnd(text: string, i: number): number {
  STRING_END.lastIndex = i + 1;
  for (;;) {
    const m = STRING_END.exec(text)!;
    if (m[0] === '"') return m.index + 1;
    STRING_END.lastIndex = m.index + 2; // an escape: skip the escaped character
  }
}

/** The index just past the value that starts at `i`. */
function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 0x22) return stringEnd(text, i);
  if (c !== 0x7b && c !== 0x5b) {
    LITERAL_END.lastIndex = i;
    return LITERAL_END.exec(text)?.index ?? text.length;
  }
  let depth = 0;
  STRUCTURE.lastIndex = i;
  for (;;) {
    const m = STRUCTURE.exec(text)!;
    const ch = m[0];
    if (ch === '"') {
      STRUCTURE.lastIndex = stringEnd(text, m.index);
    } else if (ch === '{' || ch === '[') {
      depth++;
    } else if (--depth === 0) {
      return m.index + 1;
    }
  }
}

/** The span of element `index` of the array that starts at `i` (or after white space from there), or undefined when it has fewer. */
export function elementSpan(text: string, i: number, index: number): Span | undefined {
  i = skipSpace(text, i);
  if (text.charCodeAt(i) !== 0x5b) return undefined;
  i = skipSpace(text, i + 1);
  for (let k = 0; text.charCodeAt(i) !== 0x5d; k++) {
    const end = valueEnd(text, i);
    if (k === index) return { start: i, end };
    i = skipSpace(text, end);
    if (text.charCodeAt(i) === 0x2c) i = skipSpace(text, i + 1);
  }
  return undefined;
}

/**
 * The span of member `key` of the object that starts at `i` (or after white space; the last one when the key
 * repeats, as JSON.parse keeps the last), or undefined when it has none.
 */
export function memberSpan(text: string, i: number, key: string): Span | undefined {
  i = skipSpace(text, i);
  if (text.charCodeAt(i) !== 0x7b) return undefined;
  let found: Span | undefined;
  i = skipSpace(text, i + 1);
  while (text.charCodeAt(i) === 0x22) {
    const keyEnd = stringEnd(text, i);
    const raw = text.slice(i + 1, keyEnd - 1);
    const name = raw.includes('\\') ? (JSON.parse(text.slice(i, keyEnd)) as string) : raw;
    i = skipSpace(text, skipSpace(text, keyEnd) + 1); // past the colon
    const end = valueEnd(text, i);
    if (name === key) found = { start: i, end };
    i = skipSpace(text, end);
    if (text.charCodeAt(i) === 0x2c) i = skipSpace(text, i + 1);
  }
  return found;
}
