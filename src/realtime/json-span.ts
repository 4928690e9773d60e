// Where a value sits inside a JSON text, so it can be passed on as the bytes it arrived
// in instead of being serialized again after `JSON.parse`. Only ever run on text that
// JSON.parse accepted, so it assumes valid JSON and does not validate. Strings, which hold
// most of a payload's characters, are skipped with `indexOf` (a native search).

/** A value's text: `text.slice(start, end)`. */
export interface Span {
  start: number;
  end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** The index just past the string whose opening quote is at `i`. */
function stringEnd(text: string, i: number): number {
  for (;;) {
    i = text.indexOf('"', i + 1);
    // Escaped when preceded by an odd number of backslashes.
    let k = i - 1;
    while (text.charCodeAt(k) === BACKSLASH) k--;
    if ((i - 1 - k) % 2 === 0) return i + 1;
  }
}

/** The index just past the value that starts at `i`. */
function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return stringEnd(text, i);
  if (c !== 0x7b && c !== 0x5b) {
    // A number or a literal: up to the next delimiter.
    for (i++; i < text.length; i++) {
      const d = text.charCodeAt(i);
      if (d === 0x2c || d === 0x5d || d === 0x7d || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) return i;
    }
    return i;
  }
  let depth = 0;
  for (; ; i++) {
    const d = text.charCodeAt(i);
    if (d === QUOTE) i = stringEnd(text, i) - 1;
    else if (d === 0x7b || d === 0x5b) depth++;
    else if ((d === 0x7d || d === 0x5d) && --depth === 0) return i + 1;
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
