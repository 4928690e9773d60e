// Response heads and JSON bodies for every HTTP path: errors as `{"error": {"code", "message"}}`
// with the right status, and the headers every response of a request carries.
//
// Errors by layer: the HTTP layer throws `HttpError`; the domain and bus layers throw
// their own errors (`DomainError`s such as BusUnavailableError or ContentNotFoundError,
// and core's AuthError), which know nothing of HTTP. `httpErrorOf` is the one function
// that maps those to status, code, message and headers; every HTTP error path (the
// router, error counting, the stream and Realtime REST routes) answers through it.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { AuthError } from '../core/auth.js';
import { DomainError, type ErrorCategory } from '../core/errors.js';

/**
 * Headers every response of a request carries (x-request-id, CORS), kept here until its
 * head is written. Not `res.setHeader`: once that is used, Node keeps a header table (an
 * object and an array per header) on the response for as long as it is open, ~500 bytes
 * on every SSE stream; a head written from one object in `writeHead` keeps none.
 */
const pendingHeaders = new WeakMap<ServerResponse, Record<string, string>>();

/** Adds headers to the response's head, whoever writes it (through `writeHead`). */
export function addResponseHeaders(res: ServerResponse, headers: Record<string, string>): void {
  const pending = pendingHeaders.get(res);
  if (pending) Object.assign(pending, headers);
  else pendingHeaders.set(res, { ...headers });
}

/** Writes the response head: `headers` plus those added with `addResponseHeaders`. */
export function writeHead(res: ServerResponse, status: number, headers: OutgoingHttpHeaders = {}): void {
  const pending = pendingHeaders.get(res);
  if (pending) pendingHeaders.delete(res);
  res.writeHead(status, pending ? { ...pending, ...headers } : headers);
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra response headers, e.g. Retry-After for 429/503. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The status of each domain error category. */
const STATUS_OF: Record<ErrorCategory, number> = { invalid: 400, forbidden: 403, not_found: 404, conflict: 409, unavailable: 503 };

/** The `error.code` of each way a key can fail verification (Supabase's wording is the message). */
const AUTH_ERROR_CODES = { missing: 'missing_api_key', expired: 'token_expired', malformed: 'invalid_token', signature: 'invalid_token', claims: 'invalid_token', signer: 'invalid_token', role: 'role_not_allowed' } as const;

/**
 * The HTTP answer for an error any layer threw: an HttpError as it is, a domain error
 * (see the header) by its category, a failed key verification as a 401. Undefined for
 * anything else: an unexpected error, which the caller answers as a 500 and logs.
 */
export function httpErrorOf(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof DomainError) {
    const headers: Record<string, string> = err.retryAfterSeconds === undefined ? {} : { 'retry-after': String(err.retryAfterSeconds) };
    return new HttpError(STATUS_OF[err.category], err.code, err.message, headers);
  }
  if (err instanceof AuthError) return new HttpError(401, AUTH_ERROR_CODES[err.kind], explainAuthError(err), { 'www-authenticate': 'Bearer' });
  return undefined;
}

/**
 * Supabase's wording first (clients match on it), then, for the one failure whose cause a
 * user cannot guess, why: a well-formed key made with a different secret, typically by
 * `fanout keys` run against another data directory.
 */
function explainAuthError(err: AuthError): string {
  if (err.kind !== 'signature') return err.message;
  return `${err.message}: the key was signed with a different secret than this gateway's (FANOUT_JWT_SECRET, or the development secret in its --data-dir); \`fanout keys\` run with the gateway's settings prints keys it accepts`;
}

export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** Writes a JSON error unless headers were already sent (then the stream is just ended). */
export function sendError(res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = errorBody(err.code, err.message);
  writeHead(res, err.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...err.headers,
  });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  writeHead(res, status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}
