// HTTP routing on find-my-way (fastify's router). Handlers get one context object and
// may be async; anything they throw becomes a JSON error, so no route can leave a
// request hanging or answer in a different error shape.
import type { IncomingMessage, ServerResponse } from 'node:http';
import FindMyWay from 'find-my-way';
import { scrubSecrets, type Logger } from '../core/log.js';
import { HttpError, httpErrorOf, sendError } from './http-errors.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** Path parameters, already URI-decoded by the router. */
  params: Record<string, string>;
  url: URL;
  /** Query string with repeated keys preserved (`topic=a&topic=b`). */
  query: URLSearchParams;
  /** Short id for logs and error correlation. */
  requestId: string;
}

export type RouteHandler = (ctx: RequestContext) => void | Promise<void>;

interface RouteStore {
  handler: RouteHandler;
}

let requestCounter = 0;

/** A process-unique request id, short enough for logs (the access log and error bodies quote it). */
export function nextRequestId(): string {
  return (++requestCounter).toString(36);
}

export class Router {
  private readonly fmw = FindMyWay({ ignoreTrailingSlash: true, maxParamLength: 256 });
  private readonly methodsByPath = new Map<string, Set<Method>>();

  constructor(private readonly log: Logger) {}

  on(method: Method | Method[], path: string, handler: RouteHandler): void {
    for (const m of Array.isArray(method) ? method : [method]) {
      this.fmw.on(m, path, () => undefined, { handler } satisfies RouteStore);
      const known = this.methodsByPath.get(path) ?? new Set<Method>();
      known.add(m);
      this.methodsByPath.set(path, known);
    }
  }

  /** Every registered path (in find-my-way syntax, `/api/content/:contentId`) with its methods, for the API description's completeness test. */
  routes(): { path: string; methods: Method[] }[] {
    return [...this.methodsByPath].map(([path, methods]) => ({ path, methods: [...methods] }));
  }

  /** Dispatches a request; returns false when no route matched so the caller can answer 404. */
  handle(req: IncomingMessage, res: ServerResponse, requestId = nextRequestId()): boolean {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    let path: string;
    try {
      path = decodeURI(url.pathname);
    } catch {
      sendError(res, new HttpError(400, 'bad_url', `request path is not valid percent-encoding: ${url.pathname.slice(0, 200)}`));
      return true;
    }
    const found = this.fmw.find((req.method ?? 'GET') as Method, url.pathname);
    if (!found) {
      if (req.method !== 'GET' && this.fmw.find('GET', url.pathname)) {
        sendError(res, new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${path}`));
        return true;
      }
      return false;
    }
    const store = found.store as RouteStore;
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(found.params)) if (v !== undefined) params[k] = v;
    const ctx: RequestContext = { req, res, params, url, query: url.searchParams, requestId };
    try {
      const result = store.handler(ctx);
      if (result instanceof Promise) result.catch((err: unknown) => this.fail(ctx, err));
    } catch (err) {
      this.fail(ctx, err);
    }
    return true;
  }

  private fail(ctx: RequestContext, err: unknown): void {
    const answer = httpErrorOf(err);
    if (answer) {
      sendError(ctx.res, answer);
      return;
    }
    this.log.error({ err, requestId: ctx.requestId, method: ctx.req.method, path: scrubSecrets(ctx.url.pathname) }, 'unhandled error in route');
    sendError(ctx.res, new HttpError(500, 'internal', `internal error (request ${ctx.requestId})`));
  }
}
