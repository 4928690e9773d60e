// The HTTP access log: one structured line per request when its response ends (or the
// client goes away), with the request id the response also carries in `x-request-id`.
//
// Credentials never reach it: the query value of any parameter whose name suggests a
// credential is replaced, and anything shaped like a JWT anywhere in the path or query
// is too. Headers are not logged at all. Probe and scrape paths (`/healthz`, `/readyz`,
// `/metrics`) log at debug, so a 5-second scrape interval does not drown the log.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter } from 'prom-client';
import { scrubSecrets, type Logger } from '../core/log.js';
import type { GatewayMetrics } from './metrics.js';
import { addResponseHeaders } from './http-errors.js';

/** Query parameter names whose values are credentials (apikey, access_token, token, secret, password, ...). */
const SECRET_PARAM = /key|token|secret|passw|auth|sig|jwt|session|credential|cookie/i;
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** A request target safe to log: path and query with every credential replaced. */
export function scrubUrl(raw: string): string {
  const q = raw.indexOf('?');
  const path = scrubSecrets(q < 0 ? raw : raw.slice(0, q));
  if (q < 0) return path;
  const params = raw
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      if (eq < 0) return scrubSecrets(pair);
      return SECRET_PARAM.test(safeDecode(name)) ? `${name}=[redacted]` : scrubSecrets(pair);
    });
  return `${path}?${params.join('&')}`;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export class AccessLog {
  private readonly requests: Counter;

  constructor(
    private readonly log: Logger,
    metrics: GatewayMetrics,
  ) {
    this.requests = new Counter({ name: 'fanout_http_requests_total', help: 'HTTP requests answered, by status code (WebSocket upgrades excluded)', labelNames: ['status'], registers: [metrics.registry] });
  }

  /** Tags the response with `x-request-id` and logs it when it is over. */
  track(req: IncomingMessage, res: ServerResponse, requestId: string): void {
    const started = performance.now();
    addResponseHeaders(res, { 'x-request-id': requestId });
    // `on`, not `once`: 'close' comes once, and once's wrapper costs ~150 bytes for as long
    // as a stream stays open.
    res.on('close', () => {
      // nginx's 499: the client left before any response was sent, so there is no real status.
      const status = res.headersSent ? res.statusCode : 499;
      this.requests.labels(String(status)).inc();
      const path = req.url ?? '/';
      const line = {
        reqId: requestId,
        method: req.method,
        path: scrubUrl(path),
        status,
        ms: Math.round((performance.now() - started) * 10) / 10,
        remote: req.socket.remoteAddress,
        ...(res.writableEnded ? {} : { aborted: true }),
      };
      const quiet = QUIET_PATHS.has(path.split('?')[0]!);
      if (status >= 500) this.log.warn(line, 'request');
      else if (quiet) this.log.debug(line, 'request');
      else this.log.info(line, 'request');
    });
  }

  /** WebSocket (or other) upgrades never produce a ServerResponse; they are logged on arrival. */
  upgrade(req: IncomingMessage, requestId: string): void {
    this.log.info({ reqId: requestId, method: req.method, path: scrubUrl(req.url ?? '/'), upgrade: req.headers.upgrade, remote: req.socket.remoteAddress }, 'upgrade');
  }
}
