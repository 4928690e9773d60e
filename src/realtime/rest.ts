// REST broadcast endpoints with Supabase's statuses and bodies (reference §7):
//   POST /realtime/v1/api/broadcast                          batch, delivered as JSON text frames
//   POST /realtime/v1/api/broadcast/:topic/events/:event     single, delivered as binary kind 4
// Both go through `publishBroadcast`, the path WebSocket and database sends share.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Claims } from '../core/auth.js';
import { readBody } from '../server/body.js';
import { httpErrorOf, sendJson, writeHead } from '../server/http-errors.js';
import { digest, idempotencyKeyOf } from '../server/idempotency.js';
import type { RequestContext } from '../server/router.js';
import { publishBroadcast, type BroadcastData } from './channel-topics.js';
import type { RealtimeContext, RealtimeDeps } from './context.js';
import { flexibleBoolean, isObject } from './join-config.js';
import { RateCounter } from './limits.js';

/** A REST answer other than 202: the status and the JSON body the real server sends. */
class RestError {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

const unauthorized = (): RestError => new RestError(401, { message: 'Unauthorized' });
const TOO_BIG = 'Payload size exceeds tenant limit';

/** The token as the real server's API plug reads it: `Authorization: Bearer`, else the `apikey` header. */
function requestToken(req: IncomingMessage): string | undefined {
  const authz = req.headers.authorization;
  const bearer = typeof authz === 'string' ? /^Bearer\s+(.+)$/i.exec(authz.trim())?.[1] : undefined;
  if (bearer) return bearer;
  const apikey = req.headers.apikey;
  return typeof apikey === 'string' && apikey ? apikey : undefined;
}

interface BatchMessage {
  topic: string;
  event: string;
  payload: Record<string, unknown>;
  private: boolean;
  id?: string;
}

/** Validates the batch body; errors come back shaped like Ecto changeset errors (422). */
function validateBatch(body: unknown, maxPayloadBytes: number): BatchMessage[] {
  const messages = isObject(body) ? body.messages : undefined;
  if (messages === undefined || messages === null || (Array.isArray(messages) && messages.length === 0)) {
    throw new RestError(422, { errors: { messages: ["can't be blank"] } });
  }
  if (!Array.isArray(messages)) throw new RestError(422, { errors: { messages: ['is invalid'] } });
  const out: BatchMessage[] = [];
  const errors: Record<string, string[]>[] = [];
  let invalid = false;
  for (const entry of messages) {
    const e: Record<string, string[]> = {};
    const m = isObject(entry) ? entry : {};
    if (!isObject(entry)) e.messages = ['is invalid'];
    for (const field of ['topic', 'event'] as const) {
      const v = m[field];
      if (v === undefined || v === null || v === '') e[field] = ["can't be blank"];
      else if (typeof v !== 'string') e[field] = ['is invalid'];
    }
    if (m.payload === undefined || m.payload === null) e.payload = ["can't be blank"];
    else if (!isObject(m.payload)) e.payload = ['is invalid'];
    else if (Buffer.byteLength(JSON.stringify(m.payload)) > maxPayloadBytes) e.payload = [TOO_BIG];
    const isPrivate = m.private === undefined || m.private === null ? false : flexibleBoolean(m.private, false);
    if (m.private !== undefined && m.private !== null && typeof m.private !== 'boolean' && !/^(true|false)$/i.test(String(m.private))) e.private = ['is invalid'];
    if (m.id !== undefined && m.id !== null && typeof m.id !== 'string') e.id = ['is invalid'];
    errors.push(e);
    if (Object.keys(e).length) {
      invalid = true;
      continue;
    }
    out.push({
      topic: m.topic as string,
      event: m.event as string,
      payload: m.payload as Record<string, unknown>,
      private: isPrivate,
      ...(typeof m.id === 'string' ? { id: m.id } : {}),
    });
  }
  if (invalid) throw new RestError(422, { errors: { messages: errors } });
  return out;
}

export function registerBroadcastRoutes(ctx: RealtimeContext, deps: RealtimeDeps): void {
  const { limits } = ctx;
  const { hub, router } = deps;
  /** Messages per second per caller (JWT `sub`, or the role for project keys). */
  const callers = new Map<string, RateCounter>();
  const bodyLimit = limits.maxPayloadBytes + 64 * 1024;

  deps.lifecycle.onSweep((now) => {
    for (const [key, counter] of callers) {
      counter.tick(now);
      if (counter.idle) callers.delete(key);
    }
  });

  /** Users are told apart by `sub`; callers with a project key (anon, service_role) by address. */
  const counterFor = (claims: Claims, req: IncomingMessage): RateCounter => {
    const key = claims.sub ? `user:${claims.sub}` : `${claims.role}@${req.socket.remoteAddress ?? ''}`;
    let counter = callers.get(key);
    if (!counter) callers.set(key, (counter = new RateCounter(limits.maxEventsPerSecond)));
    return counter;
  };

  const authenticate = async (req: IncomingMessage): Promise<Claims> => {
    try {
      return await deps.auth.verify(requestToken(req));
    } catch {
      ctx.error('auth');
      throw unauthorized();
    }
  };

  /** Null when allowed; otherwise why not. Private sends are authorized by the database's RLS policies. */
  const canWrite = async (topic: string, claims: Claims): Promise<RestError | null> => {
    const db = deps.database;
    if (!db) return new RestError(422, { message: 'Tenant database unavailable' });
    try {
      return (await db.authorizer.canWrite(topic, claims, 'broadcast')) ? null : new RestError(403, { message: 'Unauthorized' });
    } catch (err) {
      ctx.log.warn({ err, topic }, 'broadcast write authorization failed');
      return new RestError(500, { message: 'Unable to authorize broadcast' });
    }
  };

  const body = async (req: IncomingMessage): Promise<Buffer> => {
    try {
      const bytes = await readBody(req, bodyLimit);
      deps.metrics.received('rest', bytes.length);
      return bytes;
    } catch (err) {
      const answer = httpErrorOf(err);
      if (answer) throw new RestError(answer.status, { message: answer.message });
      throw err;
    }
  };

  /**
   * Runs a send, with its Idempotency-Key when the request has one: a retry with the same
   * key (after a timeout or a 503) publishes nothing twice and is answered 202 again.
   * `send` gets the idempotency id to derive each message's publication id from.
   */
  const once = async (req: IncomingMessage, raw: Buffer, scope: string, send: (id?: string) => Promise<void>): Promise<Record<string, string>> => {
    const key = idempotencyKeyOf(req);
    if (key === undefined) {
      await send();
      return {};
    }
    const answer = await deps.idempotency.run(`broadcast\0${scope}`, key, digest(req.url ?? '', raw), async (id) => {
      await send(id);
      return { status: 202, body: null };
    });
    return answer.replayed ? { 'idempotent-replayed': 'true' } : {};
  };

  const handle = (run: (c: RequestContext) => Promise<Record<string, string>>) => async (c: RequestContext) => {
    try {
      accepted(c.res, await run(c));
    } catch (caught) {
      // Errors of the shared HTTP layer (a malformed Idempotency-Key, a reused one) in Supabase's REST shape;
      // those that say when to retry (the bus is down) go to the router, which answers with Retry-After.
      const answer = httpErrorOf(caught);
      const err = answer && !c.res.headersSent && answer.headers['retry-after'] === undefined ? new RestError(answer.status, { message: answer.message }) : caught;
      if (!(err instanceof RestError)) throw err;
      if (err.status === 429) ctx.error('rate_limit');
      else if (err.status === 422 || err.status === 400 || err.status === 415) ctx.error('bad_request');
      sendJson(c.res, err.status, err.body);
    }
  };

  router.on(
    'POST',
    '/realtime/v1/api/broadcast',
    handle(async ({ req }) => {
      const claims = await authenticate(req);
      const raw = await body(req);
      let parsed: unknown;
      try {
        parsed = raw.length ? JSON.parse(raw.toString('utf8')) : {};
      } catch (err) {
        throw new RestError(400, { message: `Request body is not valid JSON: ${(err as Error).message}` });
      }
      const messages = validateBatch(parsed, limits.maxPayloadBytes);
      const counter = counterFor(claims, req);
      return once(req, raw, callerKey(claims), async (id) => {
        if (counter.avg > limits.maxEventsPerSecond) throw new RestError(429, { message: 'You have exceeded your rate limit' });
        if (messages.length + counter.avg > limits.maxEventsPerSecond) {
          throw new RestError(429, { message: 'Too many messages to broadcast, please reduce the batch size' });
        }
        // Private messages are sent only where the caller may write; the rest are skipped silently.
        const allowed = new Map<string, boolean>();
        for (const m of messages) {
          if (m.private && !allowed.has(m.topic)) allowed.set(m.topic, (await canWrite(m.topic, claims)) === null);
        }
        for (const [i, m] of messages.entries()) {
          if (m.private && !allowed.get(m.topic)) continue;
          const data: BroadcastData = { event: m.event, payload: m.payload, frame: 'text', ...(m.id !== undefined ? { id: m.id } : {}) };
          await publishBroadcast(hub, m.topic, m.private, data, { id: id === undefined ? undefined : `${id}.${i}` });
          counter.add();
        }
      });
    }),
  );

  router.on(
    'POST',
    '/realtime/v1/api/broadcast/:topic/events/:event',
    handle(async ({ req, params, query }) => {
      const claims = await authenticate(req);
      const type = String(req.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim()
        .toLowerCase();
      if (type !== 'application/json' && type !== 'application/octet-stream') {
        req.resume();
        throw new RestError(415, { error: 'Unsupported Media Type. Use application/json or application/octet-stream' });
      }
      const raw = await body(req);
      if (raw.length > limits.maxPayloadBytes) throw new RestError(422, { errors: { payload: [TOO_BIG] } });
      const { topic, event } = params as { topic: string; event: string };
      let data: BroadcastData;
      if (type === 'application/json') {
        let payload: unknown = {};
        if (raw.length) {
          try {
            payload = JSON.parse(raw.toString('utf8'));
          } catch (err) {
            throw new RestError(400, { message: `Request body is not valid JSON: ${(err as Error).message}` });
          }
        }
        data = { event, payload, frame: 'binary', ...(raw.length ? { json: raw } : {}) };
      } else {
        data = { event, payload: raw, frame: 'binary' };
      }
      const counter = counterFor(claims, req);
      return once(req, raw, callerKey(claims), async (id) => {
        if (counter.avg >= limits.maxEventsPerSecond) throw new RestError(429, { message: 'You have exceeded your rate limit' });
        const isPrivate = query.get('private') === 'true';
        if (isPrivate) {
          const refusal = await canWrite(topic, claims);
          if (refusal) throw refusal;
        }
        await publishBroadcast(hub, topic, isPrivate, data, { id });
        counter.add();
      });
    }),
  );
}

/** Whose Idempotency-Keys these are: the user, or the project key's role. */
function callerKey(claims: Claims): string {
  return claims.sub ? `user:${claims.sub}` : `role:${claims.role}`;
}

function accepted(res: ServerResponse, headers: Record<string, string>): void {
  writeHead(res, 202, { 'content-length': '0', 'cache-control': 'no-store', ...headers });
  res.end();
}
