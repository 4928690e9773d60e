// The `--cors-origins` setting: which browser origins may call the gateway. Parsed here,
// apart from the CORS middleware, so the configuration can reject a bad value at start-up.

/** The `--cors-origins` setting: `*` (any origin), `off`, or a list of exact origins. */
export type CorsOrigins = '*' | 'off' | ReadonlySet<string>;

/**
 * Parses `--cors-origins`. Each listed origin must be written as a browser sends it in
 * `Origin` (scheme, host, port if not the default; no path, no trailing slash), since
 * origins are compared exactly; the error says how to write one that is not.
 */
export function parseCorsOrigins(value: string): CorsOrigins {
  const trimmed = value.trim();
  if (trimmed === '*' || trimmed === 'off') return trimmed;
  const origins = new Set<string>();
  for (const entry of trimmed.split(',').map((s) => s.trim())) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new Error(`"${entry}" is not an origin (expected *, off, or origins such as https://app.example.com, comma-separated)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`"${entry}" is not an http(s) origin`);
    if (url.origin !== entry) throw new Error(`"${entry}" is not written as a browser sends its Origin: use "${url.origin}"`);
    origins.add(entry);
  }
  return origins;
}
