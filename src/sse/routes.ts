// The SSE endpoints and the long-poll fallback:
//   GET /api/content/:contentId/progress            one content item (starts at the beginning of its history)
//   GET /api/content/progress?userId=&connectionId=  every event of a user's content (starts now)
//   GET /v1/stream?topic=content:<id>&topic=user:<id> many topics on one connection (starts now)
//   GET /api/content/:contentId/progress/poll?after=&wait=
//   GET /v1/poll?topic=…&after=&wait=                 many topics, long-polled (the client library's fallback)
// A stream resumes after `Last-Event-ID` (header, or `?lastEventId=`); without one it
// starts where `?from=start|now` says (defaults above). On /v1/stream and /v1/poll a
// cursor part may be `start` or `now` for a topic the client has no position in yet, and
// a refusal caused by one topic (400/403/404) names it in the `fanout-topic` header, so
// a client multiplexing many topics can drop that one and keep the rest.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Claims } from '../core/auth.js';
import { parseCursor, parseEventId } from '../core/event-id.js';
import type { Position } from '../core/hub.js';
import { ReadForbiddenError, canReadUser, contentTopic, isValidUserId, parseProgressTopic, userTopic } from '../core/progress-topics.js';
import type { Services } from '../server/services.js';
import { HttpError, httpErrorOf, writeHead } from '../server/http-errors.js';
import { authenticate, countingErrors, userKeyOf } from '../server/http-auth.js';
import type { RequestContext } from '../server/router.js';
import { DEFAULT_POLL_WAIT_S, LongPoll, MAX_POLL_WAIT_S, pollNow, sendPollAnswer } from './poll.js';
import { SseStream, startPosition, type StreamContext, type StreamStart } from './stream.js';
import { StreamSharing } from './sharing.js';

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  // nginx and similar proxies buffer responses unless told not to.
  'x-accel-buffering': 'no',
};

const CONNECTION_ID = /^[\w.:-]{1,128}$/;

/** A content item as the streams see it. */
export interface StreamedItem {
  readonly id: string;
  readonly ownerId: string;
  /** `running` until a final event. */
  readonly status: string;
}

/**
 * What the stream endpoints ask of the content items behind `content:<id>` topics; the
 * content module's registry is one. Handed over by the gateway, so src/sse and
 * src/content do not import each other. Each method throws the content module's own
 * errors (an unknown item, a malformed id, a reader without the right), which the routes
 * answer through `httpErrorOf`.
 */
export interface ContentItems {
  /** In a cluster: takes the item's latest state from the bus (it may be on another node). */
  refresh(contentId: string): Promise<void>;
  /** The item; throws for an unknown id. */
  require(contentId: string): StreamedItem;
  /** The item a request names, after the checks a read of one item makes: a valid id, an existing item, the reader's right to it. */
  readable(claims: Claims, contentId: string | undefined): Promise<StreamedItem>;
  /** The item's public state, for `reset` events and poll answers. */
  state(contentId: string): unknown;
}

/**
 * Where a new stream starts in each topic: the client's Last-Event-ID, else `?from=`, else
 * the endpoint's default. `tokens`: the id's parts may be `start`/`now` (multi-topic endpoints).
 */
function streamStarts(req: IncomingMessage, query: URLSearchParams, topicCount: number, fallback: 'start' | 'now', tokens = false): StreamStart[] {
  const header = req.headers['last-event-id'];
  const fromHeader = typeof header === 'string' ? header.trim() : '';
  const raw = fromHeader || (query.get('lastEventId') ?? '').trim();
  const source = fromHeader ? 'Last-Event-ID' : 'lastEventId';
  if (raw) return tokens ? parseCursor(raw, topicCount, source) : parseEventId(raw, topicCount, source);
  const from = query.get('from') ?? fallback;
  if (from !== 'start' && from !== 'now') throw new HttpError(400, 'invalid_from', `from=${JSON.stringify(from.slice(0, 40))} must be "start" or "now"`);
  return new Array<StreamStart>(topicCount).fill(from);
}

/**
 * True when the client left while its request was being authorized (token verification
 * is asynchronous): its 'close' event has already fired, so a stream opened now would
 * never be freed.
 */
function clientGone(req: IncomingMessage, res: ServerResponse): boolean {
  const h2 = (res as unknown as { stream?: { destroyed: boolean; closed: boolean } }).stream;
  return req.destroyed || res.destroyed || (h2 !== undefined && (h2.destroyed || h2.closed));
}

function samePosition(a: StreamStart, b: Position): boolean {
  return typeof a === 'object' && a.epoch === b.epoch && a.offset === b.offset;
}

/** What the SSE routes use of the deps. */
export type SseRouteDeps = Pick<Services, 'config' | 'router' | 'auth' | 'metrics' | 'connections' | 'hub' | 'clientAddress'>;

export function registerSseRoutes(deps: SseRouteDeps, ctx: StreamContext, contentItems: ContentItems): void {
  const { router, auth, metrics, connections, hub } = deps;

  /** Admits a new connection or throws its 503/429, counting the refusal by reason. */
  const admit = (transport: 'sse' | 'poll', userKey: string): void => {
    try {
      connections.admit(userKey);
    } catch (err) {
      const answer = httpErrorOf(err);
      if (answer) metrics.connectionsRejected.labels(transport, answer.code).inc();
      throw err;
    }
  };

  /** The checks every read of one item makes, in this order: a valid key (401), a valid id (400), an existing item (404), the caller's right to read it (403). */
  const authorizeItemRead = async ({ req, query, params }: RequestContext): Promise<{ claims: Claims; item: StreamedItem }> => {
    const claims = await authenticate(auth, req, query);
    return { claims, item: await contentItems.readable(claims, params.contentId) };
  };

  /** Opens a stream; `content` marks a content item's own stream (ends after the final event, may be shared). */
  const open = (
    req: IncomingMessage,
    res: ServerResponse,
    claims: Claims,
    readsFor: string | undefined,
    topics: string[],
    starts: StreamStart[],
    content: { finished: boolean } | undefined,
    readyExtra: Record<string, unknown> = {},
  ): void => {
    if (clientGone(req, res)) return;
    const userKey = userKeyOf(claims, deps.clientAddress(req), readsFor);
    admit('sse', userKey);
    writeHead(res, 200, SSE_HEADERS);
    // Shared by reader: the same user's tabs, not every reader of that user's content.
    const shareKey = content && ctx.sharing ? StreamSharing.key(userKeyOf(claims, deps.clientAddress(req)), topics[0]!) : undefined;
    new SseStream(ctx, res, userKey, topics, claims.exp * 1000, content !== undefined, shareKey).start(starts, readyExtra, content?.finished ?? false);
  };

  router.on(
    'GET',
    '/api/content/:contentId/progress',
    countingErrors(metrics, async (rc) => {
      const { req, res, query } = rc;
      const { claims, item } = await authorizeItemRead(rc);
      const topic = contentTopic(item.id);
      const starts = streamStarts(req, query, 1, 'start');
      await hub.prepare([topic]);
      const finished = item.status !== 'running';
      // Already has the final event: 204 is how SSE tells EventSource to stop reconnecting.
      if (finished && samePosition(starts[0]!, hub.position(topic))) {
        writeHead(res, 204, { 'cache-control': 'no-store' });
        res.end();
        return;
      }
      open(req, res, claims, item.ownerId, [topic], starts, { finished });
    }),
  );

  router.on(
    'GET',
    '/api/content/progress',
    countingErrors(metrics, async ({ req, res, query }) => {
      const claims = await authenticate(auth, req, query);
      const userId = query.get('userId') ?? claims.sub;
      if (userId === undefined) {
        throw new HttpError(claims.role === 'service_role' ? 400 : 403, 'missing_user_id', 'say whose progress to stream with ?userId= (a user token streams its own by default)');
      }
      if (!isValidUserId(userId)) throw new HttpError(400, 'invalid_user_id', `userId ${JSON.stringify(userId.slice(0, 80))} is not a valid user id`);
      if (!canReadUser(claims, userId)) throw new ReadForbiddenError(`the progress of user ${userId}`);
      const connectionId = query.get('connectionId') ?? undefined;
      if (connectionId !== undefined && !CONNECTION_ID.test(connectionId)) {
        throw new HttpError(400, 'invalid_connection_id', 'connectionId must be 1-128 of A-Z a-z 0-9 _ . : -');
      }
      const starts = streamStarts(req, query, 1, 'now');
      await hub.prepare([userTopic(userId)]);
      open(req, res, claims, userId, [userTopic(userId)], starts, undefined, connectionId === undefined ? {} : { connectionId });
    }),
  );

  /** The error for one topic of a multi-topic request, naming it in a header as well as in the message. */
  const topicError = (topic: string, err: unknown): unknown => {
    const answer = httpErrorOf(err);
    if (!answer) return err;
    return new HttpError(answer.status, answer.code, answer.message, { ...answer.headers, 'fanout-topic': encodeURIComponent(topic) });
  };

  /**
   * The topics of a multi-topic request (/v1/stream, /v1/poll), validated and authorized;
   * for each, the content item behind it (undefined for a user topic).
   */
  const authorizeTopics = async (claims: Claims, query: URLSearchParams, path: string): Promise<{ topics: string[]; items: ({ finished: boolean } | undefined)[] }> => {
    const topics = [...new Set(query.getAll('topic'))];
    if (topics.length === 0) throw new HttpError(400, 'missing_topic', `name at least one topic: ${path}?topic=content:<id>&topic=user:<id>`);
    if (topics.length > deps.config.maxTopicsPerStream) {
      throw new HttpError(400, 'too_many_topics', `${topics.length} topics requested; one stream may carry at most ${deps.config.maxTopicsPerStream}`);
    }
    const items: ({ finished: boolean } | undefined)[] = [];
    for (const topic of topics) {
      try {
        const parsed = parseProgressTopic(topic);
        if (!parsed) throw new HttpError(400, 'invalid_topic', `topic ${JSON.stringify(topic.slice(0, 200))} is not valid: use content:<contentId> or user:<userId>`);
        // In a cluster the item may have been created on another node: take its state from the bus first.
        if (parsed.kind === 'content') await contentItems.refresh(parsed.id);
        const item = parsed.kind === 'content' ? contentItems.require(parsed.id) : undefined;
        if (!canReadUser(claims, item ? item.ownerId : parsed.id)) throw new ReadForbiddenError(`topic ${topic}`);
        items.push(item ? { finished: item.status !== 'running' } : undefined);
      } catch (err) {
        throw topicError(topic, err);
      }
    }
    // In a cluster: this node's replica of each topic is current before any position is read.
    await hub.prepare(topics);
    return { topics, items };
  };

  router.on(
    'GET',
    '/v1/stream',
    countingErrors(metrics, async ({ req, res, query }) => {
      const claims = await authenticate(auth, req, query);
      const { topics, items } = await authorizeTopics(claims, query, '/v1/stream');
      const starts = streamStarts(req, query, topics.length, 'now', true);
      // Every topic is a finished content item and the client has its final event: nothing
      // more will ever come, and 204 is how SSE says so (EventSource stops reconnecting).
      if (items.every((item, i) => item?.finished && samePosition(starts[i]!, hub.position(topics[i]!)))) {
        writeHead(res, 204, { 'cache-control': 'no-store' });
        res.end();
        return;
      }
      open(req, res, claims, undefined, topics, starts, undefined);
    }),
  );

  /** The `wait` parameter of a poll, in seconds. */
  const pollWait = (query: URLSearchParams): number => {
    const waitRaw = query.get('wait');
    const wait = waitRaw === null ? DEFAULT_POLL_WAIT_S : Number(waitRaw);
    if (!Number.isFinite(wait) || wait < 0 || wait > MAX_POLL_WAIT_S || waitRaw === '') {
      throw new HttpError(400, 'invalid_wait', `wait=${JSON.stringify(waitRaw)} must be a number of seconds from 0 to ${MAX_POLL_WAIT_S}`);
    }
    return wait;
  };

  /** Answers a poll at once when there is something (or nothing may be waited for), else parks it. */
  const answerPoll = (req: IncomingMessage, res: ServerResponse, claims: Claims, userKey: string, topics: string[], after: Position[], wait: number, waitable: boolean): void => {
    const now = pollNow(ctx, topics, after);
    if (now.events.length > 0 || wait === 0 || !waitable) {
      metrics.messages.labels('poll', 'out').inc(now.events.length);
      sendPollAnswer(res, now, topics.length === 1 ? ctx.stateOf(topics[0]!) : null);
      return;
    }
    if (clientGone(req, res)) return;
    admit('poll', userKey);
    new LongPoll(ctx, res, userKey, topics, after, Date.now() + wait * 1000, claims.exp * 1000).start();
  };

  router.on(
    'GET',
    '/v1/poll',
    countingErrors(metrics, async ({ req, res, query }) => {
      const claims = await authenticate(auth, req, query);
      const { topics } = await authorizeTopics(claims, query, '/v1/poll');
      const afterRaw = (query.get('after') ?? '').trim();
      const after = afterRaw ? parseCursor(afterRaw, topics.length, 'after') : topics.map((): 'now' => 'now');
      const positions = after.map((start, i) => startPosition(hub, topics[i]!, start));
      answerPoll(req, res, claims, userKeyOf(claims, deps.clientAddress(req)), topics, positions, pollWait(query), true);
    }),
  );

  router.on(
    'GET',
    '/api/content/:contentId/progress/poll',
    countingErrors(metrics, async (rc) => {
      const { req, res, query } = rc;
      const { claims, item } = await authorizeItemRead(rc);
      const topic = contentTopic(item.id);
      await hub.prepare([topic]);
      const afterRaw = (query.get('after') ?? '').trim();
      const after = afterRaw ? parseEventId(afterRaw, 1, 'after')[0]! : startPosition(hub, topic, 'start');
      // A finished item never waits: nothing more will come.
      answerPoll(req, res, claims, userKeyOf(claims, deps.clientAddress(req), item.ownerId), [topic], [after], pollWait(query), item.status === 'running');
    }),
  );
}
