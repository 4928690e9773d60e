// REST broadcast endpoints with Supabase's statuses and bodies (reference §7).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { closeClients, RawClient, sleep, startRealtimeGateway, waitFor } from './helpers.js';

let gw: TestGateway;
let listener: RawClient;
/** A fresh caller per test: the messages-per-second limit counts per caller. */
let caller: string;
let callers = 0;
const BATCH = '/realtime/v1/api/broadcast';

beforeAll(async () => {
  gw = await startRealtimeGateway({ realtimeMaxEventsPerSecond: 3, realtimeMaxPayloadKb: 1 });
  listener = await RawClient.connect(gw);
  await listener.join('project:42');
});
beforeEach(async () => {
  listener.frames.length = 0;
  caller = await gw.userToken(`caller-${++callers}`);
});
afterEach(closeClients);
afterAll(async () => {
  listener.close();
  await gw.stop();
});

function post(path: string, body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = {}, token: string | null = caller): Promise<Response> {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}`, apikey: token } : {};
  return fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth, ...headers }, body });
}

async function answer(res: Response): Promise<[number, unknown]> {
  const text = await res.text();
  return [res.status, text ? JSON.parse(text) : ''];
}

describe('POST /realtime/v1/api/broadcast (batch)', () => {
  it('accepts with 202 and an empty body, delivering JSON broadcast frames (with meta.id when given)', async () => {
    const body = JSON.stringify({ messages: [{ topic: 'project:42', event: 'comment', payload: { text: 'hi' }, id: 'msg-1' }, { topic: 'project:42', event: 'comment', payload: { text: 'again' } }] });
    expect(await answer(await post(BATCH, body))).toEqual([202, '']);
    await waitFor(() => listener.frames.length === 2, 'two frames');
    expect(listener.frames).toEqual([
      [null, null, 'realtime:project:42', 'broadcast', { type: 'broadcast', event: 'comment', payload: { text: 'hi' }, meta: { id: 'msg-1' } }],
      [null, null, 'realtime:project:42', 'broadcast', { type: 'broadcast', event: 'comment', payload: { text: 'again' } }],
    ]);
  });

  it('401 {"message":"Unauthorized"} without a valid token; the apikey header alone is enough', async () => {
    const body = JSON.stringify({ messages: [{ topic: 'project:42', event: 'e', payload: {} }] });
    expect(await answer(await post(BATCH, body, {}, null))).toEqual([401, { message: 'Unauthorized' }]);
    expect(await answer(await post(BATCH, body, {}, 'not-a-jwt'))).toEqual([401, { message: 'Unauthorized' }]);
    expect((await post(BATCH, body, { apikey: gw.keys.anon }, null)).status).toBe(202);
    await waitFor(() => listener.frames.length === 1, 'the accepted message');
  });

  it('422 with changeset-shaped errors for invalid bodies, 400 for bodies that are not JSON', async () => {
    expect(await answer(await post(BATCH, '{}'))).toEqual([422, { errors: { messages: ["can't be blank"] } }]);
    expect(await answer(await post(BATCH, '{"messages":"no"}'))).toEqual([422, { errors: { messages: ['is invalid'] } }]);
    const mixed = { messages: [{ topic: 'project:42', event: 'ok', payload: {} }, { event: 7, payload: [1] }, { topic: 't', event: 'e', payload: { blob: 'x'.repeat(2000) } }] };
    expect(await answer(await post(BATCH, JSON.stringify(mixed)))).toEqual([
      422,
      { errors: { messages: [{}, { topic: ["can't be blank"], event: ['is invalid'], payload: ['is invalid'] }, { payload: ['Payload size exceeds tenant limit'] }] } },
    ]);
    const [status, body] = await answer(await post(BATCH, '{"messages": ['));
    expect(status).toBe(400);
    expect((body as { message: string }).message).toMatch(/^Request body is not valid JSON/);
    await sleep(50);
    expect(listener.frames).toEqual([]); // nothing of a refused batch is delivered
  });

  it('429 when a batch would exceed the messages-per-second limit', async () => {
    const five = JSON.stringify({ messages: Array.from({ length: 5 }, (_, i) => ({ topic: 'project:42', event: 'e', payload: { i } })) });
    expect(await answer(await post(BATCH, five))).toEqual([429, { message: 'Too many messages to broadcast, please reduce the batch size' }]);
  });
});

describe('POST /realtime/v1/api/broadcast/:topic/events/:event (single)', () => {
  it('delivers JSON as kind 4 with JSON encoding and octet-stream as kind 4 with raw bytes', async () => {
    expect((await post('/realtime/v1/api/broadcast/project%3A42/events/cursor?apikey=x&vsn=2.0.0', '{"x":1}')).status).toBe(202);
    expect((await post('/realtime/v1/api/broadcast/project%3A42/events/blob', new Uint8Array([9, 8, 7]), { 'content-type': 'application/octet-stream' })).status).toBe(202);
    await waitFor(() => listener.frames.length === 2, 'two binary frames');
    const [json, raw] = listener.frames as { binary: Buffer }[];
    const header = (event: string, encoding: number): Buffer => Buffer.concat([Buffer.from([4, 'realtime:project:42'.length, event.length, 0, encoding]), Buffer.from('realtime:project:42'), Buffer.from(event)]);
    expect(json!.binary.equals(Buffer.concat([header('cursor', 1), Buffer.from('{"x":1}')]))).toBe(true);
    expect(raw!.binary.equals(Buffer.concat([header('blob', 0), Buffer.from([9, 8, 7])]))).toBe(true);
  });

  it('415, 422, 400 and 401 with the real server bodies', async () => {
    const path = '/realtime/v1/api/broadcast/project%3A42/events/e';
    expect(await answer(await post(path, 'hi', { 'content-type': 'text/plain' }))).toEqual([415, { error: 'Unsupported Media Type. Use application/json or application/octet-stream' }]);
    expect(await answer(await post(path, JSON.stringify({ blob: 'x'.repeat(2000) })))).toEqual([422, { errors: { payload: ['Payload size exceeds tenant limit'] } }]);
    expect((await answer(await post(path, '{nope')))[0]).toBe(400);
    expect(await answer(await post(path, '{}', {}, null))).toEqual([401, { message: 'Unauthorized' }]);
  });

  it('429 "You have exceeded your rate limit" once the caller is over the limit; other callers are not', async () => {
    const path = '/realtime/v1/api/broadcast/project%3A42/events/e';
    for (let i = 0; i < 3; i++) expect((await post(path, '{}')).status).toBe(202);
    await sleep(150); // a sweep measures the rate
    expect(await answer(await post(path, '{}'))).toEqual([429, { message: 'You have exceeded your rate limit' }]);
    expect((await post(path, '{}', {}, await gw.userToken('someone-else'))).status).toBe(202);
  });
});
