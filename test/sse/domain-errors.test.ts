// The content module's own errors, as an HTTP client meets them: each refusal the domain
// raises (an id taken, a malformed owner, the item cap) is answered with its status, code,
// message and Retry-After, and counted in fanout_errors_total by kind, not as an internal
// error. The cases bad-input.test.ts does not already cover.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { http } from './helpers.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ maxContentItems: 2 });
});

afterAll(async () => {
  await gw.stop();
});

async function errorsByKind(): Promise<Record<string, number>> {
  const { values } = await gw.gateway.metrics.errors.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.kind), v.value]));
}

describe('content errors over HTTP', () => {
  it('answers each refusal with its status, code and message, and counts it by kind', async () => {
    const token = gw.keys.service_role;
    const create = (body: Record<string, unknown>) => http('POST', `${gw.url}/api/content`, { token, body: { simulate: false, ...body } });
    const before = await errorsByKind();

    expect((await create({ userId: 'alice', contentId: 'first' })).status).toBe(201);
    const taken = await create({ userId: 'bob', contentId: 'first' });
    expect([taken.status, taken.json.error]).toEqual([409, { code: 'content_exists', message: 'content first already exists' }]);

    const badOwner = await create({ userId: 'has space' });
    expect([badOwner.status, badOwner.json.error]).toEqual([400, { code: 'invalid_user_id', message: 'userId "has space" is not a valid user id' }]);

    expect((await create({ userId: 'alice', contentId: 'second' })).status).toBe(201);
    const full = await create({ userId: 'alice', contentId: 'third' });
    expect([full.status, full.json.error]).toEqual([503, { code: 'too_many_content_items', message: 'the gateway tracks its maximum of 2 content items' }]);
    expect(full.headers.get('retry-after')).toBe('30');

    const after = await errorsByKind();
    const counted = (kind: string) => (after[kind] ?? 0) - (before[kind] ?? 0);
    expect({ conflict: counted('conflict'), bad_request: counted('bad_request'), unavailable: counted('unavailable'), internal: counted('internal') }).toEqual({ conflict: 1, bad_request: 1, unavailable: 1, internal: 0 });
  });
});
