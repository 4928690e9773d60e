// Publishing content progress: the in-process API every publisher goes through (the
// HTTP route, the simulator, a job running inside the gateway). It checks the event,
// publishes it to the item's topic and its owner's topic in one bus operation, and
// updates the item's latest state. Stream frames are built from those messages by the
// SSE encoders, once per message, whoever subscribes.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Hub, HubMessage } from '../core/hub.js';
import { CONTENT_ID_RULE, FINAL_EVENTS, contentTopic, isValidContentId, isValidUserId, userTopic } from '../core/progress-topics.js';
import { ContentFinishedError, ContentNotFoundError, InvalidContentIdError, InvalidProgressError, InvalidUserIdError } from './errors.js';
import { ContentRegistry, type ContentItem } from './registry.js';

/** Event names the server itself sends on streams; a publisher may not impersonate them. */
export const SERVER_EVENTS: ReadonlySet<string> = new Set(['ready', 'reset', 'error', 'shutdown', 'message']);

/** Fields the SSE encoders add to every event's data; a publisher may not set them. */
const SERVER_FIELDS = ['topic', 'seq', 'ts', 'contentId'] as const;

const EVENT_NAME = /^[a-z][a-z0-9_.-]{0,31}$/;

export const eventNameSchema = z
  .string()
  .regex(EVENT_NAME, 'must be a lowercase event name such as "progress" (letters, digits, "_", ".", "-"; at most 32 characters)')
  .refine((name) => !SERVER_EVENTS.has(name), { message: 'is reserved for events the server sends (ready, reset, error, shutdown, message)' });

/** The body of POST /api/content/:id/progress, and what the in-process API accepts. */
export const progressBodySchema = z
  .looseObject({
    event: eventNameSchema.optional(),
    progress: z.number().min(0).max(100).optional(),
    stage: z.string().max(100).optional(),
    message: z.string().max(2000).optional(),
    /** Owner to create the item with when it does not exist yet (service_role only). */
    userId: z.string().refine(isValidUserId, { message: 'must be 1-256 printable characters without spaces or commas' }).optional(),
  })
  .superRefine((body, ctx) => {
    for (const field of SERVER_FIELDS) {
      if (field in body) ctx.addIssue({ code: 'custom', path: [field], message: `is set by the server and may not be published` });
    }
  });

export type ProgressBody = z.output<typeof progressBodySchema>;

/** What a publisher sends besides the event name: `progress`, `stage`, `message` and any other JSON fields. */
export type ProgressFields = Omit<ProgressBody, 'event' | 'userId'>;

/** Formats zod issues as one line naming each bad field. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'body'} ${i.message}`).join('; ');
}

export interface PublishOptions {
  /** Publish time in ms since the epoch (defaults to now). */
  ts?: number;
  /** Idempotency id: a retry with the same id publishes nothing twice (see Hub.publish). */
  id?: string;
  /** The caller has just refreshed the item from the bus (a cluster's shared records). */
  refreshed?: boolean;
}

export class ContentProgress {
  /** Each item's publishes in flight, so one node checks and applies them one at a time, in order. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    readonly hub: Hub,
    readonly registry: ContentRegistry,
  ) {}

  /** Creates a content item owned by `ownerId` (with a generated id unless one is given). */
  create(ownerId: string, contentId: string = randomUUID()): ContentItem {
    if (!isValidUserId(ownerId)) throw new InvalidUserIdError(ownerId);
    if (!isValidContentId(contentId)) throw new InvalidContentIdError(contentId, JSON.stringify(contentId).slice(0, 80), `${CONTENT_ID_RULE}, not "progress"`);
    return this.registry.create(contentId, ownerId);
  }

  /**
   * Publishes one event for a content item to its topic and its owner's topic, as one bus
   * operation, and resolves with the content-topic message (its offset is the event's
   * `seq` on the item's stream). `complete` and `failed` finish the item; later publishes
   * are refused (ContentFinishedError). Rejects with `BusUnavailableError` when the bus
   * cannot take the event; the item's state is then left as it was.
   */
  publish(contentId: string, event: string, fields: ProgressFields = {}, options: PublishOptions = {}): Promise<HubMessage> {
    const previous = this.queues.get(contentId);
    const run = (previous ?? Promise.resolve()).then(
      () => this.publishNow(contentId, event, fields, options),
      () => this.publishNow(contentId, event, fields, options),
    );
    this.queues.set(contentId, run);
    const done = () => {
      if (this.queues.get(contentId) === run) this.queues.delete(contentId);
    };
    run.then(done, done);
    return run;
  }

  private async publishNow(contentId: string, event: string, fields: ProgressFields, options: PublishOptions): Promise<HubMessage> {
    // In a cluster the item may have changed on another node: take its state from the bus
    // first, unless the caller just did (one round trip, not two, per publish).
    if (!options.refreshed) await this.registry.refresh(contentId);
    const { item, data, ts } = this.check(contentId, event, fields, options);
    const message = await this.hub.publish([contentTopic(contentId), userTopic(item.ownerId)], event, data, { ts, id: options.id });
    updateItem(item, event, data, ts);
    await this.registry.save(item);
    return message;
  }

  /** Validates an event for an item that exists and still runs; returns the message data. */
  private check(contentId: string, event: string, fields: ProgressFields, options: PublishOptions): { item: ContentItem; data: Record<string, unknown>; ts: number } {
    const checked = progressBodySchema.safeParse({ ...fields, event });
    if (!checked.success) throw new InvalidProgressError(describeIssues(checked.error));
    const item = this.registry.get(contentId);
    if (!item) throw new ContentNotFoundError(contentId);
    if (item.status !== 'running') throw new ContentFinishedError(contentId, item.status);
    const { event: _event, userId: _userId, ...rest } = checked.data;
    const data: Record<string, unknown> = { contentId, ...rest };
    if (event === 'complete' && data.progress === undefined) data.progress = 100;
    return { item, data, ts: options.ts ?? Date.now() };
  }
}

/** The item's latest state after `event`. */
function updateItem(item: ContentItem, event: string, data: Record<string, unknown>, ts: number): void {
  if (typeof data.progress === 'number') item.progress = data.progress;
  if (typeof data.stage === 'string') item.stage = data.stage;
  if (FINAL_EVENTS.has(event)) item.status = event === 'complete' ? 'complete' : 'failed';
  item.updatedAt = ts;
}
