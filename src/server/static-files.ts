// Same-origin browser assets (the dashboard, the demo, the client bundles). Pages load
// only their own files and talk only to their own gateway, which the Content Security
// Policy enforces; HEAD is answered like GET without the body.
import type { Router } from './router.js';
import { writeHead } from './http-errors.js';

export const PAGE_SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
} as const;

export const CONTENT_TYPES = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  /** TypeScript declarations (Deno and esm.sh serve them so). */
  ts: 'application/typescript; charset=utf-8',
} as const;

export interface StaticAsset {
  path: string;
  type: string;
  /** The bytes, read once at start-up, or produced (and cached by the producer) on first request. */
  body: Uint8Array | (() => Promise<Uint8Array>);
  /** Extra response headers (e.g. X-TypeScript-Types on a library bundle). */
  headers?: Record<string, string>;
}

export function serveStatic(router: Router, assets: readonly StaticAsset[]): void {
  for (const { path, type, body, headers } of assets) {
    router.on(['GET', 'HEAD'], path, async ({ req, res }) => {
      const bytes = typeof body === 'function' ? await body() : body;
      writeHead(res, 200, { 'content-type': type, 'content-length': bytes.byteLength, ...PAGE_SECURITY_HEADERS, ...headers });
      res.end(req.method === 'HEAD' ? undefined : bytes);
    });
  }
}
