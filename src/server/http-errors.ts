// Response heads and JSON bodies for every HTTP path: errors as `{"error": {"code", "message"}}`
// with the right status, and the headers every response of a request carries.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

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
