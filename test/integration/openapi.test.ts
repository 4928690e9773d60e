// GET /openapi.json describes every HTTP endpoint, and real answers match it: the document
// is checked against the OpenAPI 3.0 schema (@seriousme/openapi-schema-validator), every
// route the router knows is in it (and nothing else), and a tour of real requests against
// a gateway on a real PostgreSQL has each status and body validated by openapi-backend.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAPIBackend, type Document } from 'openapi-backend';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { createMigratedDatabase, type TestDatabase } from '../helpers/database.js';
import { cleanBus, randomPrefix } from '../bus/helpers.js';

let gw: TestGateway;
let db: TestDatabase;
let doc: Document;
let api: OpenAPIBackend;
let alice: string;

beforeAll(async () => {
  db = await createMigratedDatabase('fanout_openapi');
  gw = await startGateway({ databaseUrl: db.url, dbStart: 'eager' });
  alice = await gw.userToken('alice');
  const res = await fetch(`${gw.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as Document;
  api = new OpenAPIBackend({ definition: doc, validate: true, strict: true, quick: false });
  await api.init();
});

afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

interface Answer {
  status: number;
  type: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A real request; an event stream is read only up to its headers, then closed. */
function call(method: string, path: string, { token, body, headers = {} }: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const url = new URL(path, gw.url);
  const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(payload !== undefined && !headers['content-type'] ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      const type = String(res.headers['content-type'] ?? '').split(';')[0]!;
      if (type === 'text/event-stream') {
        res.destroy();
        resolve({ status: res.statusCode!, type, headers: res.headers, body: undefined });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, type, headers: res.headers, body: type === 'application/json' ? JSON.parse(text) : text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** The problems between a real answer and the document: an undeclared status or media type, or a body off its schema. */
function mismatches(method: string, path: string, answer: Answer): string[] {
  const url = new URL(path, gw.url);
  const operation = api.matchOperation({ method, path: url.pathname, query: url.search.slice(1), headers: {} });
  if (!operation) return [`no operation in the document for ${method} ${url.pathname}`];
  const declared = (operation.responses as Record<string, { content?: Record<string, unknown> }>)[String(answer.status)];
  if (!declared) return [`${operation.operationId}: status ${answer.status} is not declared`];
  const types = Object.keys(declared.content ?? {});
  if (types.length === 0) return answer.type === '' || answer.status === 204 || answer.status === 202 ? [] : [`${operation.operationId} ${answer.status}: declares no body, got ${answer.type}`];
  if (!types.includes(answer.type)) return [`${operation.operationId} ${answer.status}: ${answer.type} is not one of ${types.join(', ')}`];
  if (answer.type !== 'application/json') return [];
  const result = api.validateResponse(answer.body, operation, answer.status);
  return (result.errors ?? []).map((e) => `${operation.operationId} ${answer.status}: ${e.instancePath} ${e.message} (${JSON.stringify(answer.body).slice(0, 200)})`);
}

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.0 document', async () => {
    const result = await new Validator().validate(doc as unknown as Record<string, unknown>);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('describes every route the gateway serves, and only those', () => {
    const described = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths ?? {})) for (const method of Object.keys(ops ?? {})) described.add(`${method.toUpperCase()} ${path}`);
    const served = new Set<string>();
    for (const { path, methods } of gw.gateway.router.routes()) {
      for (const m of methods) if (m !== 'HEAD') served.add(`${m} ${path.replace(/:(\w+)/g, '{$1}')}`);
    }
    // The WebSocket endpoint is an upgrade handler, not a router route; /api/bus exists
    // only with --bus redis|nats (its answer is checked below on such a gateway).
    served.add('GET /realtime/v1/websocket');
    served.add('GET /api/bus');
    expect([...served].filter((r) => !described.has(r)).sort(), 'served but not described').toEqual([]);
    expect([...described].filter((r) => !served.has(r)).sort(), 'described but not served').toEqual([]);
  });

  it('matches real answers: statuses, media types and bodies', async () => {
    const service = gw.keys.service_role;
    const tour: [string, string, Parameters<typeof call>[2]?][] = [
      ['GET', '/'],
      ['GET', '/openapi.json'],
      ['GET', '/healthz'],
      ['GET', '/readyz'],
      ['GET', '/metrics'],
      ['GET', '/api/alerts', { token: service }],
      ['GET', '/api/alerts'],
      ['GET', '/api/alerts', { token: alice }],
      ['GET', '/dashboard'],
      ['GET', '/dashboard/feed', { token: service }],
      ['GET', '/demo'],
      ['GET', '/demo/session'],
      ['GET', '/favicon.ico'],
      ['GET', '/client/fanout-client.js'],
      ['GET', '/demo/style.css'],
      ['POST', '/api/content', { token: alice, body: { simulate: false, contentId: 'openapi-1' } }],
      ['POST', '/api/content', { token: alice, body: { steps: 'many' } }],
      ['POST', '/api/content', { token: alice, body: { simulate: false, contentId: 'openapi-1' } }],
      ['GET', '/api/content/openapi-1', { token: alice }],
      ['GET', '/api/content/no-such-item', { token: alice }],
      ['GET', '/api/content/openapi-1', { token: 'not-a-jwt' }],
      ['POST', '/api/content/openapi-1/progress', { token: service, body: { progress: 10 } }],
      ['POST', '/api/content/openapi-2/progress', { token: service, body: { progress: 5, userId: 'alice' } }],
      ['POST', '/api/content/openapi-1/progress', { token: alice, body: { progress: 10 } }],
      ['GET', '/api/content/openapi-1/progress/poll?wait=0', { token: alice }],
      ['GET', '/api/content/openapi-1/progress', { token: alice }],
      ['GET', '/api/content/progress?userId=alice', { token: alice }],
      ['GET', '/v1/stream?topic=content:openapi-1&topic=user:alice', { token: alice }],
      ['GET', '/v1/stream', { token: alice }],
      ['GET', '/v1/poll?topic=user:alice&wait=0', { token: alice }],
      ['POST', '/api/content/openapi-1/progress', { token: service, body: { event: 'complete' } }],
      ['POST', '/api/content/openapi-1/progress', { token: service, body: { progress: 99 } }],
      ['POST', '/api/projects/p1/comments', { token: alice, body: { body: 'first' } }],
      ['GET', '/api/projects/p1/comments?limit=10', { token: alice }],
      ['GET', '/api/projects/p1/comments?limit=0', { token: alice }],
      ['PATCH', '/api/projects/p1/comments/999999', { token: alice, body: { body: 'nope' } }],
      ['POST', '/realtime/v1/api/broadcast', { token: service, body: { messages: [{ topic: 'room1', event: 'hi', payload: { a: 1 } }] } }],
      ['POST', '/realtime/v1/api/broadcast', { token: service, body: { messages: [] } }],
      ['POST', '/realtime/v1/api/broadcast', { token: 'bad', body: { messages: [] } }],
      ['POST', '/realtime/v1/api/broadcast/room1/events/hi', { token: service, body: { a: 1 } }],
      ['POST', '/realtime/v1/api/broadcast/room1/events/hi', { token: service, body: 'x', headers: { 'content-type': 'text/plain' } }],
    ];
    const problems: string[] = [];
    const statuses: string[] = [];
    for (const [method, path, opts] of tour) {
      const answer = await call(method, path, opts);
      statuses.push(`${method} ${path} ${answer.status}`);
      problems.push(...mismatches(method, path, answer));
    }
    // The comment just added can be edited and deleted, through the same checks.
    const list = await call('GET', '/api/projects/p1/comments', { token: alice });
    const id = (list.body as { id: number }[])[0]!.id;
    for (const [method, opts] of [['PATCH', { token: alice, body: { body: 'edited' } }], ['DELETE', { token: alice }]] as const) {
      const answer = await call(method, `/api/projects/p1/comments/${id}`, opts);
      statuses.push(`${method} comment ${answer.status}`);
      problems.push(...mismatches(method, `/api/projects/p1/comments/${id}`, answer));
    }
    expect(problems, statuses.join('\n')).toEqual([]);
    // The tour reached the answers it was meant to: successes and each kind of error.
    expect(statuses).toEqual(
      expect.arrayContaining([
        'GET /api/alerts 401',
        'POST /api/content 400',
        'POST /api/content 409',
        'GET /api/content/no-such-item 404',
        'POST /api/content/openapi-2/progress 201',
        'POST /api/content/openapi-1/progress 403',
        'GET /v1/stream 400',
        'POST /api/content/openapi-1/progress 409',
        'POST /realtime/v1/api/broadcast 202',
        'POST /realtime/v1/api/broadcast 422',
        'POST /realtime/v1/api/broadcast 401',
        'POST /realtime/v1/api/broadcast/room1/events/hi 415',
        'PATCH comment 200',
        'DELETE comment 204',
      ]),
    );
  });

  it('matches the answer of /api/bus on a gateway with a Redis bus', async () => {
    const prefix = randomPrefix();
    const clustered = await startGateway({ bus: 'redis', busPrefix: prefix });
    try {
      const res = await fetch(`${clustered.url}/api/bus`);
      const answer: Answer = { status: res.status, type: 'application/json', headers: {}, body: await res.json() };
      expect(answer.status).toBe(200);
      expect(mismatches('GET', '/api/bus', answer)).toEqual([]);
    } finally {
      await clustered.stop();
      await cleanBus('redis', prefix);
    }
  });

  it('serves the client library with its types, as Deno’s X-TypeScript-Types names them', async () => {
    const js = await fetch(`${gw.url}/client/fanout-client.js`);
    expect(js.status).toBe(200);
    const typesPath = js.headers.get('x-typescript-types');
    expect(typesPath).toBe('/client/fanout-client.d.ts');
    const dts = await fetch(`${gw.url}${typesPath}`);
    expect(dts.status).toBe(200);
    expect(dts.headers.get('content-type')).toMatch(/^application\/typescript/);
    const text = await dts.text();
    expect(text).toMatch(/export declare class FanoutClient\b/);
    expect(text).not.toMatch(/from '\.\//); // one self-contained file
    const collab = await fetch(`${gw.url}/client/fanout-collaboration.d.ts`);
    expect(collab.status).toBe(200);
    expect(await collab.text()).toMatch(/export declare function /);
  });
});
