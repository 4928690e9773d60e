// HTTP routes for content items: create (optionally simulated), read state, publish progress.
//
// Unknown content on publish: a service may create an item by publishing its first event
// with `userId` (the owner) in the body; without `userId` the answer is 404, because
// progress nobody may read would be lost.
import { z } from 'zod';
import { isServiceRole } from '../core/auth.js';
import { formatPosition } from '../core/event-id.js';
import { contentTopic } from '../core/progress-topics.js';
import type { Services } from '../server/services.js';
import { HttpError, sendJson } from '../server/http-errors.js';
import { readJson } from '../server/body.js';
import { digest, idempotencyKeyOf, type IdempotentAnswer } from '../server/idempotency.js';
import { authenticate, countingErrors, requireServiceRole } from '../server/http-auth.js';
import { ContentNotFoundError, InvalidProgressError } from './errors.js';
import { describeIssues, progressBodySchema, type ContentProgress } from './progress.js';
import { checkContentId, contentState, type ContentItem } from './registry.js';
import type { ContentSimulator } from './simulator.js';

const createBodySchema = z
  .strictObject({
    steps: z.number().int().min(1).max(1000).optional(),
    intervalMs: z.number().int().min(0).max(60_000).optional(),
    failAtStep: z.number().int().min(0).max(1000).optional(),
    /** false: only register the item; events come from POST /api/content/:id/progress. */
    simulate: z.boolean().optional(),
    /** Owner (service_role only; users own what they create). */
    userId: z.string().optional(),
    contentId: z.string().optional(),
  })
  .refine((b) => b.failAtStep === undefined || b.failAtStep <= (b.steps ?? DEFAULT_STEPS), { message: 'failAtStep must not exceed steps', path: ['failAtStep'] });

const DEFAULT_STEPS = 20;
const DEFAULT_INTERVAL_MS = 100;

async function readObject(deps: ContentRouteDeps, req: Parameters<typeof readJson>[0]): Promise<Record<string, unknown>> {
  const body = await readJson(req, deps.config.maxBodyBytes, {});
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'invalid_body', 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

function itemLinks(item: ContentItem): Record<string, string> {
  const base = `/api/content/${encodeURIComponent(item.id)}`;
  return { progressUrl: `${base}/progress`, pollUrl: `${base}/progress/poll` };
}

/** What the content routes use of the deps. */
export type ContentRouteDeps = Pick<Services, 'config' | 'router' | 'auth' | 'metrics' | 'hub' | 'idempotency'>;

export function registerContentRoutes(deps: ContentRouteDeps, progress: ContentProgress, simulator: ContentSimulator): void {
  const { router, auth, metrics, hub } = deps;
  const registry = progress.registry;

  router.on(
    'POST',
    '/api/content',
    countingErrors(metrics, async ({ req, res, query }) => {
      const claims = await authenticate(auth, req, query);
      const raw = await readObject(deps, req);
      const parsed = createBodySchema.safeParse(raw);
      if (!parsed.success) throw new HttpError(400, 'invalid_body', `invalid content request: ${describeIssues(parsed.error)}`);
      const body = parsed.data;
      let ownerId: string;
      if (isServiceRole(claims)) {
        if (!body.userId) throw new HttpError(400, 'missing_user_id', 'service_role must say whose content this is: pass "userId" in the body');
        ownerId = body.userId;
      } else if (claims.sub) {
        if (body.userId !== undefined && body.userId !== claims.sub) throw new HttpError(403, 'forbidden', 'a user may create content only for themselves (service_role may pass any userId)');
        ownerId = claims.sub;
      } else {
        throw new HttpError(403, 'forbidden', `a key with role "${claims.role}" has no user to own content: use a user token, or service_role with "userId"`);
      }
      const simulate = body.simulate ?? true;
      if (simulate) simulator.checkCapacity();
      const item = progress.create(ownerId, body.contentId);
      await registry.save(item);
      const plan = { steps: body.steps ?? DEFAULT_STEPS, intervalMs: body.intervalMs ?? DEFAULT_INTERVAL_MS, failAtStep: body.failAtStep };
      if (simulate) simulator.start(item.id, plan);
      const links = itemLinks(item);
      sendJson(res, 201, { contentId: item.id, userId: item.ownerId, simulated: simulate, ...(simulate ? plan : {}), ...links }, { location: `/api/content/${encodeURIComponent(item.id)}` });
    }),
  );

  router.on(
    'GET',
    '/api/content/:contentId',
    countingErrors(metrics, async ({ req, res, query, params }) => {
      // A valid key (401), then the item's checks: a valid id (400), an existing item (404), the right to read it (403).
      const item = await registry.readable(await authenticate(auth, req, query), params.contentId);
      await hub.prepare([contentTopic(item.id)]);
      const { epoch, offset } = hub.position(contentTopic(item.id));
      sendJson(res, 200, { ...contentState(item), lastEventId: formatPosition(epoch, offset), ...itemLinks(item) });
    }),
  );

  router.on(
    'POST',
    '/api/content/:contentId/progress',
    countingErrors(metrics, async ({ req, res, query, params }) => {
      const claims = await authenticate(auth, req, query);
      requireServiceRole(claims, 'publishing progress');
      const contentId = checkContentId(params.contentId);
      const raw = await readObject(deps, req);
      const parsed = progressBodySchema.safeParse(raw);
      if (!parsed.success) throw new InvalidProgressError(describeIssues(parsed.error));
      const { event = 'progress', userId, ...fields } = parsed.data;
      const key = idempotencyKeyOf(req);
      const publishOnce = async (id?: string): Promise<IdempotentAnswer> => {
        let created = false;
        await registry.refresh(contentId);
        const existing = registry.get(contentId);
        if (!existing) {
          if (!userId) throw new ContentNotFoundError(contentId, 'pass "userId" (its owner) to create it with this event');
          await registry.save(progress.create(userId, contentId));
          created = true;
        } else if (userId !== undefined && userId !== existing.ownerId) {
          throw new HttpError(409, 'owner_mismatch', `content ${contentId} belongs to another user; "userId" may only name its owner`);
        }
        const msg = await progress.publish(contentId, event, fields, { id, refreshed: true });
        return { status: created ? 201 : 200, body: { contentId, event, seq: msg.offset, id: formatPosition(msg.epoch, msg.offset), ts: msg.ts, created } };
      };
      metrics.received('rest', Number(req.headers['content-length'] ?? 0));
      if (key === undefined) {
        const answer = await publishOnce();
        sendJson(res, answer.status, answer.body);
        return;
      }
      // A retry with the same key (after a timeout or a 503) publishes nothing twice and gets the first answer.
      const scope = `progress\0${contentId}\0${claims.sub ?? claims.role}`;
      const answer = await deps.idempotency.run(scope, key, digest(JSON.stringify(raw)), publishOnce);
      sendJson(res, answer.status, answer.body, answer.replayed ? { 'idempotent-replayed': 'true' } : {});
    }),
  );
}
