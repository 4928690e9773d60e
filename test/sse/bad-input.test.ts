// Authorization of streams and publishing, and every kind of bad input: each gets a JSON
// error {"error": {"code", "message"}} with the right status, and a stream that was open
// the whole time keeps working.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { http, openClient, rawGet, waitFor, type Client } from './helpers.js';

let gw: TestGateway;
let alice: string;
let bob: string;
let contentId: string;
let witness: Client;

beforeAll(async () => {
  gw = await startGateway({ maxBodyBytes: 4096, maxHeaderBytes: 4096, maxTopicsPerStream: 3 });
  alice = await gw.userToken('alice');
  bob = await gw.userToken('bob');
  contentId = gw.gateway.service('content').progress.create('alice').id;
  // Open through every bad request below; it must be undisturbed at the end.
  witness = openClient(`${gw.url}/api/content/${contentId}/progress`, alice);
  await waitFor(() => witness.of('ready').length === 1, 'the witness stream');
});

afterAll(async () => {
  // Nothing else was disturbed: the witness stream is still open and still receives.
  await gw.gateway.service('content').progress.publish(contentId, 'progress', { progress: 42 });
  await waitFor(() => witness.of('progress').some((e) => e.data.progress === 42), 'the witness to receive after all the bad input');
  expect(witness.failures).toBe(0);
  expect(witness.opens).toBe(1);
  witness.close();
  await gw.stop();
});

const expectError = (res: Awaited<ReturnType<typeof http>>, status: number, code: string, message?: RegExp) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  expect(res.json.error).toBeDefined();
  expect(res.json.error!.code).toBe(code);
  if (message) expect(res.json.error!.message).toMatch(message);
};

describe('keys', () => {
  it('accepts a key as Bearer, apikey header, ?apikey= and ?access_token=', async () => {
    const base = `${gw.url}/api/content/${contentId}/progress`;
    for (const [url, headers] of [
      [base, { authorization: `Bearer ${alice}` }],
      [base, { apikey: alice }],
      [`${base}?apikey=${alice}`, {}],
      [`${base}?access_token=${alice}`, {}],
    ] as const) {
      const s = await rawGet(url, headers);
      expect(s.status).toBe(200);
      expect(s.headers['content-type']).toMatch(/^text\/event-stream/);
      s.destroy();
    }
  });

  it('answers missing and invalid keys with 401 in Supabase’s words', async () => {
    const url = `${gw.url}/api/content/${contentId}/progress`;
    expectError(await http('GET', url), 401, 'missing_api_key', /^API key is missing$/);
    expectError(await http('GET', url, { token: 'not-a-jwt' }), 401, 'invalid_token', /not a valid JWT/);
    const [h, p] = alice.split('.');
    expectError(await http('GET', url, { token: `${h}.${p}.AAAA` }), 401, 'invalid_token', /Failed to validate JWT signature/);
    const expired = await gw.gateway.auth.sign({ sub: 'alice', role: 'authenticated', exp: Math.floor(Date.now() / 1000) - 30 });
    expectError(await http('GET', url, { token: expired }), 401, 'token_expired', /^Token has expired \d+ seconds ago$/);
    expectError(await http('GET', `${gw.url}/v1/stream?topic=user:alice`), 401, 'missing_api_key');
    expectError(await http('GET', `${gw.url}/api/content/${contentId}/progress/poll`), 401, 'missing_api_key');
  });

  it('lets a user read only their own content; service_role reads all; anon reads none', async () => {
    expectError(await http('GET', `${gw.url}/api/content/${contentId}/progress`, { token: bob }), 403, 'forbidden');
    expectError(await http('GET', `${gw.url}/api/content/${contentId}/progress/poll?wait=0`, { token: bob }), 403, 'forbidden');
    expectError(await http('GET', `${gw.url}/api/content/${contentId}`, { token: bob }), 403, 'forbidden');
    expectError(await http('GET', `${gw.url}/v1/stream?topic=content:${contentId}`, { token: bob }), 403, 'forbidden', new RegExp(`content:${contentId}`));
    expectError(await http('GET', `${gw.url}/v1/stream?topic=user:alice`, { token: bob }), 403, 'forbidden');
    expectError(await http('GET', `${gw.url}/api/content/${contentId}/progress`, { token: gw.keys.anon }), 403, 'forbidden');
    const asService = await rawGet(`${gw.url}/api/content/${contentId}/progress`, { authorization: `Bearer ${gw.keys.service_role}` });
    expect(asService.status).toBe(200);
    asService.destroy();
  });

  it('publishing needs service_role', async () => {
    const url = `${gw.url}/api/content/${contentId}/progress`;
    expectError(await http('POST', url, { body: { progress: 1 } }), 401, 'missing_api_key');
    expectError(await http('POST', url, { token: alice, body: { progress: 1 } }), 403, 'forbidden', /service_role/);
    expectError(await http('POST', url, { token: gw.keys.anon, body: { progress: 1 } }), 403, 'forbidden');
    const ok = await http('POST', url, { token: gw.keys.service_role, body: { progress: 1, stage: 'drafting' } });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ contentId, event: 'progress', created: false });
    expect(ok.json.id).toBe(`${ok.json.id as string}`.split(':')[0] + `:${ok.json.seq as number}`);
  });

  it('creates content on first publish only when service_role names the owner', async () => {
    const id = `job-${Date.now()}`;
    expectError(await http('POST', `${gw.url}/api/content/${id}/progress`, { token: gw.keys.service_role, body: { progress: 0 } }), 404, 'content_not_found', /userId/);
    const created = await http('POST', `${gw.url}/api/content/${id}/progress`, { token: gw.keys.service_role, body: { progress: 0, userId: 'bob' } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ created: true, seq: 1 });
    expectError(await http('POST', `${gw.url}/api/content/${id}/progress`, { token: gw.keys.service_role, body: { progress: 5, userId: 'carol' } }), 409, 'owner_mismatch');
    const state = await http('GET', `${gw.url}/api/content/${id}`, { token: bob });
    expect(state.json).toMatchObject({ userId: 'bob', progress: 0, status: 'running' });
  });

  it('POST /api/content: users own what they create; anon cannot create; service_role names the owner', async () => {
    expectError(await http('POST', `${gw.url}/api/content`, { token: gw.keys.anon, body: {} }), 403, 'forbidden');
    expectError(await http('POST', `${gw.url}/api/content`, { token: alice, body: { userId: 'bob' } }), 403, 'forbidden');
    expectError(await http('POST', `${gw.url}/api/content`, { token: gw.keys.service_role, body: {} }), 400, 'missing_user_id');
    const made = await http('POST', `${gw.url}/api/content`, { token: gw.keys.service_role, body: { userId: 'bob', simulate: false } });
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ userId: 'bob', simulated: false });
  });
});

describe('bad input', () => {
  it('unknown content answers 404 on every endpoint', async () => {
    for (const [method, path] of [
      ['GET', '/api/content/nope/progress'],
      ['GET', '/api/content/nope/progress/poll'],
      ['GET', '/api/content/nope'],
      ['GET', '/v1/stream?topic=content:nope'],
    ] as const) {
      expectError(await http(method, gw.url + path, { token: gw.keys.service_role }), 404, 'content_not_found', /nope/);
    }
  });

  it('malformed content ids answer 400', async () => {
    expectError(await http('GET', `${gw.url}/api/content/${'x'.repeat(200)}/progress`, { token: alice }), 400, 'invalid_content_id');
    expectError(await http('GET', `${gw.url}/api/content/bad%20id/progress`, { token: alice }), 400, 'invalid_content_id');
    expectError(await http('POST', `${gw.url}/api/content/bad%24id/progress`, { token: gw.keys.service_role, body: { userId: 'a' } }), 400, 'invalid_content_id');
  });

  it('malformed Last-Event-ID answers 400 naming it', async () => {
    const url = `${gw.url}/api/content/${contentId}/progress`;
    for (const id of ['garbage', 'abc:', ':5', 'abc:-1', 'abc:1.5', 'a:1,b:2', 'abc:99999999999999999']) {
      expectError(await http('GET', url, { token: alice, headers: { 'last-event-id': id } }), 400, 'invalid_last_event_id', /Last-Event-ID/);
    }
    expectError(await http('GET', `${url}?lastEventId=zzz`, { token: alice }), 400, 'invalid_last_event_id', /lastEventId/);
    expectError(await http('GET', `${url}/poll?after=zzz`, { token: alice }), 400, 'invalid_last_event_id', /after/);
    // A multi-topic id must name one position per topic.
    expectError(
      await http('GET', `${gw.url}/v1/stream?topic=user:alice&topic=content:${contentId}`, { token: alice, headers: { 'last-event-id': 'abc:1' } }),
      400,
      'invalid_last_event_id',
      /2 topic/,
    );
  });

  it('bad topic names, no topic and too many topics answer 400', async () => {
    for (const topic of ['foo', 'content:', 'user:', 'content:bad id', 'realtime:room1', 'content:a,b']) {
      expectError(await http('GET', `${gw.url}/v1/stream?topic=${encodeURIComponent(topic)}`, { token: gw.keys.service_role }), 400, 'invalid_topic');
    }
    expectError(await http('GET', `${gw.url}/v1/stream`, { token: alice }), 400, 'missing_topic');
    const four = ['a', 'b', 'c', 'd'].map((u) => `topic=user:${u}`).join('&');
    expectError(await http('GET', `${gw.url}/v1/stream?${four}`, { token: gw.keys.service_role }), 400, 'too_many_topics');
  });

  it('bad query values answer 400', async () => {
    const url = `${gw.url}/api/content/${contentId}/progress`;
    expectError(await http('GET', `${url}?from=yesterday`, { token: alice }), 400, 'invalid_from');
    for (const wait of ['-1', '61', 'abc', '']) expectError(await http('GET', `${url}/poll?wait=${wait}`, { token: alice }), 400, 'invalid_wait');
    expectError(await http('GET', `${gw.url}/api/content/progress?connectionId=${'x'.repeat(200)}`, { token: alice }), 400, 'invalid_connection_id');
    expectError(await http('GET', `${gw.url}/api/content/progress`, { token: gw.keys.service_role }), 400, 'missing_user_id');
  });

  it('invalid JSON, wrong types and forbidden fields in a publish answer 400/415 naming the problem', async () => {
    const url = `${gw.url}/api/content/${contentId}/progress`;
    const token = gw.keys.service_role;
    expectError(await http('POST', url, { token, rawBody: '{"progress": 4' }), 400, 'invalid_json');
    expectError(await http('POST', url, { token, rawBody: '[1,2]' }), 400, 'invalid_body');
    expectError(await http('POST', url, { token, body: { progress: 150 } }), 400, 'invalid_progress', /progress/);
    expectError(await http('POST', url, { token, body: { progress: 'half' } }), 400, 'invalid_progress', /progress/);
    expectError(await http('POST', url, { token, body: { event: 'reset' } }), 400, 'invalid_progress', /reserved/);
    expectError(await http('POST', url, { token, body: { event: 'Bad Name' } }), 400, 'invalid_progress', /event/);
    expectError(await http('POST', url, { token, body: { ts: 1 } }), 400, 'invalid_progress', /ts/);
    expectError(await http('POST', url, { token, rawBody: 'progress=4', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    expectError(await http('POST', `${gw.url}/api/content`, { token: alice, body: { steps: 0 } }), 400, 'invalid_body', /steps/);
    expectError(await http('POST', `${gw.url}/api/content`, { token: alice, body: { stepz: 3 } }), 400, 'invalid_body', /stepz/);
    expectError(await http('POST', `${gw.url}/api/content`, { token: alice, body: { steps: 3, failAtStep: 9 } }), 400, 'invalid_body', /failAtStep/);
  });

  it('an oversized body answers 413 and oversized headers 431, both as JSON', async () => {
    const url = `${gw.url}/api/content/${contentId}/progress`;
    expectError(await http('POST', url, { token: gw.keys.service_role, body: { stage: 'x', blob: 'y'.repeat(10_000) } }), 413, 'payload_too_large');
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, { headers: { authorization: `Bearer ${alice}`, 'x-padding': 'p'.repeat(8000) } }, (r) => {
        let body = '';
        r.on('data', (c: Buffer) => (body += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(431);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'headers_too_large' } });
  });

  it('publishing after the final event answers 409', async () => {
    const id = gw.gateway.service('content').progress.create('alice').id;
    const url = `${gw.url}/api/content/${id}/progress`;
    expect((await http('POST', url, { token: gw.keys.service_role, body: { event: 'complete' } })).status).toBe(200);
    expectError(await http('POST', url, { token: gw.keys.service_role, body: { progress: 3 } }), 409, 'content_finished');
  });

  it('counts the errors it answered by kind', async () => {
    const text = await gw.gateway.metrics.registry.getSingleMetricAsString('fanout_errors_total');
    expect(text).toMatch(/kind="auth"} [1-9]/);
    expect(text).toMatch(/kind="bad_request"} [1-9]/);
    expect(text).toMatch(/kind="not_found"} [1-9]/);
  });
});
