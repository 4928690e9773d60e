// Errors by layer: the domain and bus layers throw errors that name no HTTP status, and
// httpErrorOf (src/server/http-errors.ts) is the one place that chooses status, code,
// message and headers for them. Each error here is thrown by the real code path that
// raises it, then mapped.
import { describe, expect, it } from 'vitest';
import { BusUnavailableError } from '../../src/bus/types.js';
import { createLocalHub } from '../../src/bus/memory.js';
import { Auth, AuthError } from '../../src/core/auth.js';
import { parseEventId } from '../../src/core/event-id.js';
import { DomainError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/log.js';
import { ContentProgress } from '../../src/content/progress.js';
import { ContentRegistry } from '../../src/content/registry.js';
import { ContentSimulator } from '../../src/content/simulator.js';
import { HttpError, httpErrorOf } from '../../src/server/http-errors.js';

/** What the error thrown by `run` is answered with over HTTP. */
async function answerTo(run: () => unknown): Promise<{ error: unknown; answer: HttpError | undefined }> {
  try {
    await run();
  } catch (error) {
    return { error, answer: httpErrorOf(error) };
  }
  throw new Error('expected the call to throw');
}

function content(maxContentItems = 10) {
  const registry = new ContentRegistry({ contentTtlMs: 60_000, maxContentItems });
  const progress = new ContentProgress(createLocalHub({ historySize: 10, historyTtlMs: 60_000 }), registry);
  return { registry, progress };
}

describe('httpErrorOf', () => {
  it('maps the content errors to their status and code, with no HTTP in the errors themselves', async () => {
    const { registry, progress } = content(2);
    const item = progress.create('alice', 'c1');
    const cases: [string, () => unknown, number, string, RegExp][] = [
      ['a malformed content id', () => progress.create('alice', 'not valid!'), 400, 'invalid_content_id', /^content id "not valid!" is not valid \(1-128 of A-Z a-z 0-9 _ \. -, not "progress"\)$/],
      ['a malformed owner id', () => progress.create('has space'), 400, 'invalid_user_id', /^userId "has space" is not a valid user id$/],
      ['an event that fails validation', () => progress.publish(item.id, 'progress', { progress: 101 }), 400, 'invalid_progress', /^invalid progress event: progress /],
      ['an unknown item', () => progress.publish('nope', 'progress', {}), 404, 'content_not_found', /^content nope does not exist$/],
      ['an id taken', () => progress.create('bob', 'c1'), 409, 'content_exists', /^content c1 already exists$/],
      ['a reader without the right', () => registry.readable({ role: 'authenticated', sub: 'mallory', exp: 0 }, 'c1'), 403, 'forbidden', /^this key may not read content c1: /],
    ];
    for (const [what, run, status, code, message] of cases) {
      const { error, answer } = await answerTo(run);
      expect(error, what).toBeInstanceOf(DomainError);
      expect(error, what).not.toHaveProperty('status');
      expect(answer, what).toMatchObject({ status, code, headers: {} });
      expect(answer!.message, what).toMatch(message);
    }
    await progress.publish(item.id, 'complete');
    const finished = await answerTo(() => progress.publish(item.id, 'progress', { progress: 1 }));
    expect(finished.answer).toMatchObject({ status: 409, code: 'content_finished', message: 'content c1 already ended with "complete"; no further events are accepted' });
  });

  it('tells a client when to retry a refusal for capacity: the item cap, the simulator cap, the bus', async () => {
    const { progress } = content(1);
    progress.create('alice');
    const items = await answerTo(() => progress.create('alice'));
    expect(items.answer).toMatchObject({ status: 503, code: 'too_many_content_items', message: 'the gateway tracks its maximum of 1 content items', headers: { 'retry-after': '30' } });

    const simulator = new ContentSimulator(progress, createLogger({ level: 'silent' }), 0);
    const jobs = await answerTo(() => simulator.checkCapacity());
    expect(jobs.answer).toMatchObject({ status: 503, code: 'too_many_simulations', message: 'the simulator already runs its maximum of 0 jobs', headers: { 'retry-after': '5' } });

    const bus = await answerTo(() => {
      throw new BusUnavailableError('redis', 'connection refused');
    });
    expect(bus.answer).toMatchObject({ status: 503, code: 'bus_unavailable', message: 'the redis bus is unavailable: connection refused', headers: { 'retry-after': '2' } });
  });

  it('maps a malformed event id, a failed key, and passes HTTP errors through; anything else is unexpected', async () => {
    const eventId = await answerTo(() => parseEventId('zzz', 1, 'Last-Event-ID'));
    expect(eventId.answer).toMatchObject({ status: 400, code: 'invalid_last_event_id', message: 'Last-Event-ID "zzz" is not a valid event id (expected "<epoch>:<offset>")' });

    const auth = new Auth('a-secret-of-at-least-thirty-two-characters!');
    const missing = await answerTo(() => auth.verify(undefined));
    expect(missing.error).toBeInstanceOf(AuthError);
    expect(missing.answer).toMatchObject({ status: 401, code: 'missing_api_key', message: 'API key is missing', headers: { 'www-authenticate': 'Bearer' } });

    const http = new HttpError(418, 'teapot', 'short and stout');
    expect(httpErrorOf(http)).toBe(http);
    expect(httpErrorOf(new Error('a bug'))).toBeUndefined();
    expect(httpErrorOf('a string')).toBeUndefined();
  });
});
