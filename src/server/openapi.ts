// `GET /openapi.json`: every HTTP endpoint of the gateway as an OpenAPI 3.0 document, for
// tools (client generators, API explorers, contract tests). test/server/openapi.test.ts
// checks that each route the router knows is described here and that real answers match
// these schemas, so the document cannot drift from the code unnoticed.
// It stays one file: it is one document, nearly all data, and each path is read against
// the shared schemas and responses declared at its top.
import { packageVersion } from '../core/version.js';
import { defineModule } from './services.js';
import { sendJson } from './http-errors.js';

type Schema = Record<string, unknown>;
type Responses = Record<string, Schema>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema, description: string): Schema => ({ description, content: { 'application/json': { schema } } });
const error = (description: string): Schema => json(ref('Error'), description);
const realtimeError = (description: string): Schema => json(ref('RealtimeError'), description);
const eventStream = (description: string): Schema => ({ description, content: { 'text/event-stream': { schema: { type: 'string' } } } });
const noContent = (description: string): Schema => ({ description });
const str = (description?: string): Schema => (description ? { type: 'string', description } : { type: 'string' });
const int = (description?: string): Schema => (description ? { type: 'integer', description } : { type: 'integer' });
const obj = (properties: Record<string, Schema>, required: string[] = Object.keys(properties), extra: Schema = {}): Schema => ({ type: 'object', properties, required, ...extra });

const query = (name: string, description: string, schema: Schema = { type: 'string' }, extra: Schema = {}): Schema => ({ name, in: 'query', description, schema, ...extra });
const path = (name: string, description: string): Schema => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const header = (name: string, description: string): Schema => ({ name, in: 'header', description, schema: { type: 'string' } });

/** The errors every authenticated Fanout endpoint may answer with. */
const AUTH_ERRORS: Responses = {
  '400': error('a malformed parameter or body; the message names it'),
  '401': error('missing, malformed, badly signed or expired key (Supabase’s wording)'),
  '403': error('the key may not do this'),
};
const BUSY: Responses = {
  '429': error('over a per-user cap; Retry-After says when to try again'),
  '503': error('over a gateway-wide cap, draining, or a dependency is down; Retry-After says when to try again'),
};
const STREAM_PARAMS = [
  query('apikey', 'the key, for clients that cannot set headers (EventSource)'),
  query('access_token', 'the key, as ?access_token='),
  header('Last-Event-ID', 'resume after this id (sent by EventSource on reconnect)'),
];
const SECURED = [{ bearer: [] }, { apikey: [] }, { apikeyQuery: [] }, { accessToken: [] }];

const contentState: Schema = obj(
  {
    contentId: str(),
    userId: str('the owner'),
    status: { type: 'string', enum: ['running', 'complete', 'failed'] },
    progress: { type: 'number', nullable: true },
    stage: { type: 'string', nullable: true },
    createdAt: int('ms since the epoch'),
    updatedAt: int('ms since the epoch'),
  },
  ['contentId', 'userId', 'status', 'progress', 'stage', 'createdAt', 'updatedAt'],
);

const alertRule: Schema = obj(
  {
    name: str(),
    signal: str(),
    op: { type: 'string', enum: ['>', '>=', '<', '<='] },
    threshold: { type: 'number' },
    resolve: { type: 'number' },
    forMs: int(),
    resolveForMs: int(),
    windowMs: int(),
    aggregate: { type: 'string', enum: ['last', 'avg', 'min', 'max'] },
    severity: { type: 'string', enum: ['info', 'warning', 'critical'] },
    description: str(),
  },
  ['name', 'signal', 'op', 'threshold', 'resolve', 'forMs', 'resolveForMs', 'windowMs', 'severity', 'description'],
);

const ERROR_OBJECT = obj({ code: str('stable, machine-readable'), message: str('what was wrong, for a person') });

const SCHEMAS: Record<string, Schema> = {
  Error: obj({ error: ERROR_OBJECT }, ['error']),
  RealtimeError: {
    type: 'object',
    description: 'Supabase Realtime’s REST error shapes: {"message"}, {"error"} or {"errors": {field: [problems]}}',
    properties: { message: str(), error: str(), errors: { type: 'object', additionalProperties: { type: 'array', items: str() } } },
  },
  ContentState: contentState,
  Comment: obj({ id: int(), project_id: str(), user_id: str(), body: str(), created_at: str(), updated_at: str() }),
  PollAnswer: obj(
    {
      events: { type: 'array', items: obj({ id: str('resume id'), event: str(), data: {} }, ['id', 'event']) },
      lastEventId: { type: 'string', nullable: true, description: 'pass as ?after= on the next poll' },
      state: { type: 'object', nullable: true, description: 'the item’s state (single-topic polls), else null' },
      more: { type: 'boolean', description: 'true when more events are ready: poll again at once' },
    },
    ['events', 'lastEventId', 'state', 'more'],
  ),
  Readiness: obj({ name: str(), ready: { type: 'boolean' }, detail: str() }, ['name', 'ready']),
  AlertRule: alertRule,
};

function buildDocument(): Schema {
  const paths: Record<string, Record<string, Schema>> = {
    '/': {
      get: { operationId: 'info', tags: ['operations'], summary: 'what this gateway is and where its endpoints are', responses: { '200': json(obj({ name: str(), description: str(), endpoints: { type: 'object', additionalProperties: str() } }), 'the gateway’s name and endpoint map') } },
    },
    '/openapi.json': {
      get: { operationId: 'openapi', tags: ['operations'], summary: 'this document', responses: { '200': json({ type: 'object' }, 'OpenAPI 3.0 document') } },
    },
    '/healthz': {
      get: { operationId: 'healthz', tags: ['operations'], summary: 'liveness: 200 while the process can answer', responses: { '200': json(obj({ status: { type: 'string', enum: ['ok'] }, uptimeSeconds: int(), pid: int() }), 'alive') } },
    },
    '/readyz': {
      get: {
        operationId: 'readyz',
        tags: ['operations'],
        summary: 'readiness: 200 when every check (database, bus, not draining) passes',
        responses: {
          '200': json(obj({ status: { type: 'string', enum: ['ready'] }, checks: { type: 'array', items: ref('Readiness') } }), 'ready'),
          '503': json(obj({ error: ERROR_OBJECT, checks: { type: 'array', items: ref('Readiness') } }), 'not ready; the message names each failing check'),
        },
      },
    },
    '/metrics': {
      get: { operationId: 'metrics', tags: ['operations'], summary: 'Prometheus metrics (text exposition format)', responses: { '200': { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } } } },
    },
    '/api/alerts': {
      get: {
        operationId: 'alerts',
        tags: ['operations'],
        summary: 'active alerts, recent transitions and the rules (service_role)',
        security: SECURED,
        parameters: [query('apikey', 'the key'), query('access_token', 'the key')],
        responses: {
          '200': json(obj({ active: { type: 'array', items: { type: 'object' } }, recent: { type: 'array', items: { type: 'object' } }, rules: { type: 'array', items: ref('AlertRule') }, webhook: { type: 'boolean' } }), 'the alert state'),
          ...AUTH_ERRORS,
        },
      },
    },
    '/api/bus': {
      get: {
        operationId: 'bus',
        tags: ['operations'],
        summary: 'the cluster bus connection (only with --bus redis|nats)',
        responses: {
          '200': json(obj({ kind: str(), node: str(), connected: { type: 'boolean' }, detail: str() }), 'connected'),
          '503': json(obj({ kind: str(), node: str(), connected: { type: 'boolean' }, detail: str() }), 'not connected'),
        },
      },
    },
    '/dashboard': { get: { operationId: 'dashboard', tags: ['pages'], summary: 'the live dashboard page', responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } } } },
    '/dashboard/feed': {
      get: {
        operationId: 'dashboardFeed',
        tags: ['operations'],
        summary: 'the dashboard’s live SSE feed of signals and alerts (service_role)',
        security: SECURED,
        parameters: [query('apikey', 'the key'), query('access_token', 'the key')],
        responses: { '200': eventStream('samples, alerts and channel activity'), ...AUTH_ERRORS, ...BUSY },
      },
    },
    '/demo': { get: { operationId: 'demo', tags: ['pages'], summary: 'the demo page (progress over SSE, collaboration over Realtime)', responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } } } },
    '/demo/session': {
      get: {
        operationId: 'demoSession',
        tags: ['pages'],
        summary: 'a user key for the demo page (loopback clients on the development secret, or --demo-session on)',
        parameters: [query('user', 'user id (1-40 of A-Z a-z 0-9 _ -); random when absent')],
        responses: {
          '200': json(obj({ userId: str(), anonKey: str(), accessToken: str(), expiresAt: int('seconds since the epoch') }), 'a session'),
          '400': error('bad user id'),
          '403': error('asked from another origin'),
          '404': error('demo sessions are disabled here'),
        },
      },
    },
    '/api/content': {
      post: {
        operationId: 'createContent',
        tags: ['progress'],
        summary: 'create a content item; by default a simulated generation job publishes its progress',
        security: SECURED,
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  steps: { type: 'integer', minimum: 1, maximum: 1000 },
                  intervalMs: { type: 'integer', minimum: 0, maximum: 60000 },
                  failAtStep: { type: 'integer', minimum: 0, maximum: 1000 },
                  simulate: { type: 'boolean', description: 'false: only register it; events come from POST …/progress' },
                  userId: str('the owner (service_role only)'),
                  contentId: str('choose the id (1-128 of A-Z a-z 0-9 _ . -)'),
                },
              },
            },
          },
        },
        responses: {
          '201': json(
            obj({ contentId: str(), userId: str(), simulated: { type: 'boolean' }, steps: int(), intervalMs: int(), failAtStep: int(), progressUrl: str(), pollUrl: str() }, ['contentId', 'userId', 'simulated', 'progressUrl', 'pollUrl']),
            'created; Location names it',
          ),
          ...AUTH_ERRORS,
          '409': error('that contentId exists'),
          '413': error('body over --max-body-bytes'),
          ...BUSY,
        },
      },
    },
    '/api/content/{contentId}': {
      get: {
        operationId: 'getContent',
        tags: ['progress'],
        summary: 'a content item’s state and the id of its last event',
        security: SECURED,
        parameters: [path('contentId', 'the item'), query('apikey', 'the key'), query('access_token', 'the key')],
        responses: {
          '200': json({ allOf: [ref('ContentState'), obj({ lastEventId: str(), progressUrl: str(), pollUrl: str() })] }, 'the state'),
          ...AUTH_ERRORS,
          '404': error('no such item'),
        },
      },
    },
    '/api/content/{contentId}/progress': {
      get: {
        operationId: 'streamContentProgress',
        tags: ['progress'],
        summary: 'SSE stream of one item from the start of its history (resumable); ends after complete/failed',
        security: SECURED,
        parameters: [path('contentId', 'the item'), ...STREAM_PARAMS],
        responses: { '200': eventStream('ready, progress, complete, failed, reset, shutdown events'), '204': noContent('already finished and nothing to replay'), ...AUTH_ERRORS, '404': error('no such item'), ...BUSY },
      },
      post: {
        operationId: 'publishProgress',
        tags: ['progress'],
        summary: 'publish a progress event (service_role); with "userId" an unknown item is created',
        security: SECURED,
        parameters: [path('contentId', 'the item')],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: { type: 'object', properties: { event: str('progress (default), stage, complete, failed, …'), progress: { type: 'number' }, stage: str(), userId: str('owner, to create the item') }, additionalProperties: true },
            },
          },
        },
        responses: {
          '200': json(obj({ contentId: str(), event: str(), seq: int(), id: str('resume id'), ts: int(), created: { type: 'boolean' } }), 'published'),
          '201': json(obj({ contentId: str(), event: str(), seq: int(), id: str('resume id'), ts: int(), created: { type: 'boolean' } }), 'published to a new item'),
          ...AUTH_ERRORS,
          '404': error('no such item and no "userId" to create it'),
          '409': error('the item already ended, or belongs to another user'),
          '413': error('body over --max-body-bytes'),
          ...BUSY,
        },
      },
    },
    '/api/content/{contentId}/progress/poll': {
      get: {
        operationId: 'pollContentProgress',
        tags: ['progress'],
        summary: 'long-poll of one item over the same ids and history as its stream',
        security: SECURED,
        parameters: [path('contentId', 'the item'), query('after', 'resume id of the last event seen'), query('wait', 'seconds to wait for an event (0-60)', { type: 'number' }), query('apikey', 'the key'), query('access_token', 'the key')],
        responses: { '200': json(ref('PollAnswer'), 'events (possibly none)'), ...AUTH_ERRORS, '404': error('no such item'), ...BUSY },
      },
    },
    '/api/content/progress': {
      get: {
        operationId: 'streamUserProgress',
        tags: ['progress'],
        summary: 'SSE stream of every event of a user’s content, from now',
        security: SECURED,
        parameters: [query('userId', 'whose progress (default: the token’s sub)'), query('connectionId', 'the caller’s own id for this stream, echoed in ready'), ...STREAM_PARAMS],
        responses: { '200': eventStream('ready and every event of the user’s items'), ...AUTH_ERRORS, ...BUSY },
      },
    },
    '/v1/stream': {
      get: {
        operationId: 'streamTopics',
        tags: ['progress'],
        summary: 'one SSE stream carrying many topics (content:<id>, user:<id>), from now',
        security: SECURED,
        parameters: [query('topic', 'a topic; repeat for more', { type: 'array', items: { type: 'string' } }, { required: true, style: 'form', explode: true }), query('lastEventId', 'composite resume id'), ...STREAM_PARAMS],
        responses: { '200': eventStream('events of every topic'), '204': noContent('every topic finished and nothing to replay'), ...AUTH_ERRORS, '404': error('a content topic does not exist'), ...BUSY },
      },
    },
    '/v1/poll': {
      get: {
        operationId: 'pollTopics',
        tags: ['progress'],
        summary: 'long-poll of many topics (the client library’s fallback)',
        security: SECURED,
        parameters: [query('topic', 'a topic; repeat for more', { type: 'array', items: { type: 'string' } }, { required: true, style: 'form', explode: true }), query('after', 'cursor from the last answer'), query('wait', 'seconds (0-60)', { type: 'number' }), query('apikey', 'the key'), query('access_token', 'the key')],
        responses: { '200': json(ref('PollAnswer'), 'events (possibly none)'), ...AUTH_ERRORS, '404': error('a content topic does not exist'), ...BUSY },
      },
    },
    '/api/projects/{projectId}/comments': {
      get: {
        operationId: 'listComments',
        tags: ['comments'],
        summary: 'a project’s comments, newest first, as the caller’s role sees them (RLS)',
        security: SECURED,
        parameters: [path('projectId', 'the project'), query('limit', '1-500 (default 50)', { type: 'integer' })],
        responses: { '200': json({ type: 'array', items: ref('Comment') }, 'comments'), ...AUTH_ERRORS, '503': error('the database is unavailable') },
      },
      post: {
        operationId: 'addComment',
        tags: ['comments'],
        summary: 'add a comment as the caller (RLS decides)',
        security: SECURED,
        parameters: [path('projectId', 'the project')],
        requestBody: { required: true, content: { 'application/json': { schema: obj({ body: str(), user_id: str('defaults to the token’s sub') }, ['body']) } } },
        responses: { '201': json(ref('Comment'), 'added'), ...AUTH_ERRORS, '413': error('body over --max-body-bytes'), '503': error('the database is unavailable') },
      },
    },
    '/api/projects/{projectId}/comments/{id}': {
      patch: {
        operationId: 'editComment',
        tags: ['comments'],
        summary: 'edit a comment’s body',
        security: SECURED,
        parameters: [path('projectId', 'the project'), path('id', 'the comment')],
        requestBody: { required: true, content: { 'application/json': { schema: obj({ body: str() }) } } },
        responses: { '200': json(ref('Comment'), 'edited'), ...AUTH_ERRORS, '404': error('no such comment (or not visible to the caller)'), '503': error('the database is unavailable') },
      },
      delete: {
        operationId: 'deleteComment',
        tags: ['comments'],
        summary: 'delete a comment',
        security: SECURED,
        parameters: [path('projectId', 'the project'), path('id', 'the comment')],
        responses: { '204': noContent('deleted'), ...AUTH_ERRORS, '404': error('no such comment (or not visible to the caller)'), '503': error('the database is unavailable') },
      },
    },
    '/realtime/v1/api/broadcast': {
      post: {
        operationId: 'broadcast',
        tags: ['realtime'],
        summary: 'Supabase Realtime REST broadcast: send messages to channels without a socket',
        security: SECURED,
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: obj({ messages: { type: 'array', items: obj({ topic: str(), event: str(), payload: { type: 'object' }, private: { type: 'boolean' }, id: str() }, ['topic', 'event', 'payload']) } }),
            },
          },
        },
        responses: {
          '202': noContent('accepted'),
          '400': realtimeError('body is not JSON'),
          '401': realtimeError('bad key'),
          '413': realtimeError('body too large'),
          '422': realtimeError('invalid messages'),
          '429': realtimeError('rate limit'),
        },
      },
    },
    '/realtime/v1/api/broadcast/{topic}/events/{event}': {
      post: {
        operationId: 'broadcastEvent',
        tags: ['realtime'],
        summary: 'Supabase Realtime REST broadcast of one event (JSON or binary payload)',
        security: SECURED,
        parameters: [path('topic', 'the channel topic'), path('event', 'the event name'), query('private', 'true for a private channel (RLS-authorized)', { type: 'boolean' })],
        requestBody: { content: { 'application/json': { schema: {} }, 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
        responses: {
          '202': noContent('accepted'),
          '400': realtimeError('body is not JSON'),
          '401': realtimeError('bad key'),
          '403': realtimeError('not allowed on this private channel'),
          '415': realtimeError('neither JSON nor octet-stream'),
          '422': realtimeError('payload too large'),
          '429': realtimeError('rate limit'),
        },
      },
    },
    '/realtime/v1/websocket': {
      get: {
        operationId: 'realtimeWebSocket',
        tags: ['realtime'],
        summary: 'Supabase Realtime WebSocket (Phoenix v1/v2 protocol); what @supabase/supabase-js connects to',
        parameters: [query('apikey', 'the anon or service_role key', { type: 'string' }, { required: true }), query('vsn', '1.0.0 or 2.0.0')],
        responses: { '101': noContent('switching protocols'), '401': error('bad key'), '404': error('not a WebSocket upgrade'), '503': error('over the connection cap, or draining') },
      },
    },
  };

  const asset = (operationId: string, summary: string, type: string): Schema => ({ get: { operationId, tags: ['pages'], summary, responses: { '200': { description: summary, content: { [type]: { schema: { type: 'string' } } } } } } });
  const js = 'text/javascript';
  Object.assign(paths, {
    '/client/fanout-client.js': asset('clientBundle', 'the client library as one browser ES module', js),
    '/client/fanout-client.d.ts': asset('clientTypes', 'TypeScript declarations of /client/fanout-client.js', 'application/typescript'),
    '/client/fanout-collaboration.js': asset('collaborationBundle', 'the supabase-js collaboration helper as one browser ES module', js),
    '/client/fanout-collaboration.d.ts': asset('collaborationTypes', 'TypeScript declarations of /client/fanout-collaboration.js', 'application/typescript'),
    '/demo/demo.js': asset('demoScript', 'the demo page’s script', js),
    '/demo/style.css': asset('demoStyle', 'the demo page’s styles', 'text/css'),
    '/dashboard/app.js': asset('dashboardScript', 'the dashboard’s script', js),
    '/dashboard/chart.js': asset('dashboardChart', 'the dashboard’s chart code', js),
    '/dashboard/feed-client.js': asset('dashboardFeedClient', 'the dashboard’s feed client', js),
    '/dashboard/style.css': asset('dashboardStyle', 'the dashboard’s styles', 'text/css'),
    '/favicon.ico': asset('favicon', 'the site icon (SVG)', 'image/svg+xml'),
    '/favicon.svg': asset('faviconSvg', 'the site icon', 'image/svg+xml'),
  });

  return {
    openapi: '3.0.3',
    info: {
      title: 'Fanout',
      version: packageVersion(),
      description:
        'A self-hosted real-time gateway: Server-Sent Events progress streams (resumable, with a long-poll fallback) and Supabase Realtime’s protocol. Errors are JSON {"error": {"code", "message"}} with the HTTP status; the Supabase-compatible REST endpoints answer in Supabase’s shapes.',
      license: { name: 'MIT' },
    },
    tags: [
      { name: 'progress', description: 'SSE progress streams, long-poll fallback and publishing' },
      { name: 'realtime', description: 'Supabase Realtime protocol' },
      { name: 'comments', description: 'project_comments over HTTP, as the caller (RLS)' },
      { name: 'operations', description: 'probes, metrics, alerts' },
      { name: 'pages', description: 'the demo and dashboard pages and the client bundles' },
    ],
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'anon, service_role or a user token (HS256, `fanout keys`)' },
        apikey: { type: 'apiKey', in: 'header', name: 'apikey' },
        apikeyQuery: { type: 'apiKey', in: 'query', name: 'apikey' },
        accessToken: { type: 'apiKey', in: 'query', name: 'access_token' },
      },
    },
    paths,
  };
}

let document: Schema | undefined;

/** The document (built once). */
export function openApiDocument(): Schema {
  document ??= buildDocument();
  return document;
}

export const openApiModule = defineModule({
  name: 'openapi',
  needs: ['router'],
  start: ({ router }) => router.on(['GET', 'HEAD'], '/openapi.json', ({ res }) => sendJson(res, 200, openApiDocument())),
});
