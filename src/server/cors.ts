// Cross-origin access for browser apps served from another origin than the gateway's: the
// CORS headers on every response to a page that sent `Origin`, and the answer to
// preflights. EventSource streams, long-polls and the REST APIs are subject to CORS;
// WebSocket upgrades are not (a browser sends Origin but never asks for permission).
// The gateway authorizes with keys in headers or the query string, never cookies, so no
// credentials mode is offered.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseCorsOrigins, type CorsOrigins } from '../core/origins.js';
import { HttpError, addResponseHeaders, sendError, writeHead } from './http-errors.js';

const ALLOWED_METHODS = 'GET, POST, PATCH, DELETE, OPTIONS';
/** Response headers a page may read: the back-off to honour and the id to quote in a report. */
const EXPOSED_HEADERS = 'retry-after, x-request-id, idempotent-replayed';
/** How long a browser may cache a preflight's answer (seconds). */
const PREFLIGHT_MAX_AGE = '86400';
/** The most of `Access-Control-Request-Headers` echoed back; a longer list is a bad request. */
const MAX_REQUESTED_HEADERS = 1024;
const HEADER_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

export class Cors {
  private readonly origins: CorsOrigins;

  /** `setting`: the validated `--cors-origins` value. */
  constructor(setting: string) {
    this.origins = parseCorsOrigins(setting);
  }

  /**
   * Adds the CORS headers for a request that came with `Origin`, and answers a preflight
   * (OPTIONS with `Access-Control-Request-Method`) itself. Returns true when it answered.
   * A listed-origins gateway answers a preflight from any other origin 403, naming it; a
   * simple request from one is served without CORS headers, so the browser withholds it.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    if (this.origins === 'off' || origin === undefined) return false;
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    const allowed = this.origins === '*' || this.origins.has(origin);
    if (!allowed) {
      if (!preflight) return false;
      sendError(res, new HttpError(403, 'cors_origin_not_allowed', `origin ${JSON.stringify(origin.slice(0, 200))} is not allowed by --cors-origins (FANOUT_CORS_ORIGINS)`));
      return true;
    }
    addResponseHeaders(res, this.origins === '*' ? { 'access-control-allow-origin': '*' } : { 'access-control-allow-origin': origin, vary: 'Origin' });
    if (!preflight) {
      addResponseHeaders(res, { 'access-control-expose-headers': EXPOSED_HEADERS });
      return false;
    }
    const requested = req.headers['access-control-request-headers'];
    if (requested !== undefined && (requested.length > MAX_REQUESTED_HEADERS || !HEADER_LIST.test(requested.trim()))) {
      sendError(res, new HttpError(400, 'bad_preflight', `Access-Control-Request-Headers is not a list of header names (at most ${MAX_REQUESTED_HEADERS} characters)`));
      return true;
    }
    writeHead(res, 204, {
      'access-control-allow-methods': ALLOWED_METHODS,
      // Whatever the page asks to send: keys travel in `authorization` / `apikey`, and
      // clients add their own (supabase-js: x-client-info); none of them is a cookie.
      ...(requested ? { 'access-control-allow-headers': requested.trim() } : {}),
      // A public page reaching a gateway on a private address (Chrome's Private Network Access).
      ...(req.headers['access-control-request-private-network'] === 'true' ? { 'access-control-allow-private-network': 'true' } : {}),
      'access-control-max-age': PREFLIGHT_MAX_AGE,
      'content-length': '0',
    });
    res.end();
    return true;
  }
}
