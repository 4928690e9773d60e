// The content registry: which content items exist, who owns each one, and its latest
// state. Ownership is what stream authorization checks; the latest state is what a
// client gets back in a `reset` event (or from GET /api/content/:id) when history can no
// longer replay what it missed. Finished items are forgotten `contentTtlMs` after their
// last event, so the registry stays bounded on a long-running gateway.
//
// In a cluster, items are also kept as records on the bus (`RecordStore`), so a stream
// opened on any node finds an item created on another: reads `refresh` the item from the
// bus first, and every change is `save`d back.
import type { RecordStore } from '../bus/types.js';
import type { Claims } from '../core/auth.js';
import { CONTENT_ID_RULE, canReadUser, isValidContentId, ReadForbiddenError } from '../core/progress-topics.js';
import { ContentExistsError, ContentLimitError, ContentNotFoundError, InvalidContentIdError } from './errors.js';

export type ContentStatus = 'running' | 'complete' | 'failed';

export interface ContentItem {
  readonly id: string;
  readonly ownerId: string;
  readonly createdAt: number;
  status: ContentStatus;
  progress: number | null;
  stage: string | null;
  updatedAt: number;
}

/** The public view of an item, as JSON answers and `reset` events carry it. */
export interface ContentState {
  contentId: string;
  userId: string;
  status: ContentStatus;
  progress: number | null;
  stage: string | null;
  createdAt: number;
  updatedAt: number;
}

export function contentState(item: ContentItem): ContentState {
  return {
    contentId: item.id,
    userId: item.ownerId,
    status: item.status,
    progress: item.progress,
    stage: item.stage,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  };
}

export interface RegistryLimits {
  contentTtlMs: number;
  maxContentItems: number;
}

export class ContentRegistry {
  private readonly items = new Map<string, ContentItem>();

  constructor(
    private readonly limits: RegistryLimits,
    /** The cluster's shared records; absent when the gateway runs alone. */
    private readonly records?: RecordStore,
  ) {}

  /** Cluster: takes the item's latest state from the bus (it may have been created or advanced on another node). */
  async refresh(contentId: string): Promise<void> {
    if (!this.records) return;
    const raw = await this.records.get(recordKey(contentId));
    if (raw === undefined) return;
    const shared = JSON.parse(raw) as ContentItem;
    const local = this.items.get(contentId);
    if (!local) this.items.set(contentId, { ...shared, id: contentId });
    else if (shared.updatedAt >= local.updatedAt) Object.assign(local, { status: shared.status, progress: shared.progress, stage: shared.stage, updatedAt: shared.updatedAt });
  }

  /** Cluster: writes the item's state to the bus, for the other nodes. */
  async save(item: ContentItem): Promise<void> {
    if (!this.records) return;
    await this.records.set(recordKey(item.id), JSON.stringify(item), this.limits.contentTtlMs);
  }

  get size(): number {
    return this.items.size;
  }

  get(contentId: string): ContentItem | undefined {
    return this.items.get(contentId);
  }

  /** The item's public state (for `reset` events and poll answers), if it exists. */
  state(contentId: string): ContentState | undefined {
    const item = this.items.get(contentId);
    return item ? contentState(item) : undefined;
  }

  /** The item, or ContentNotFoundError for an unknown id. */
  require(contentId: string): ContentItem {
    const item = this.items.get(contentId);
    if (!item) throw new ContentNotFoundError(contentId);
    return item;
  }

  /**
   * The item `contentId` names, for a reader holding `claims`, after the checks every read
   * of one item makes, in this order: a valid id, an existing item (taken from the bus
   * first in a cluster), and the reader's right to it.
   */
  async readable(claims: Claims, contentId: string | undefined): Promise<ContentItem> {
    const id = checkContentId(contentId);
    await this.refresh(id);
    const item = this.require(id);
    if (!canReadUser(claims, item.ownerId)) throw new ReadForbiddenError(`content ${id}`);
    return item;
  }

  /** Registers a new item; ContentExistsError if the id is taken, ContentLimitError at the item cap. */
  create(contentId: string, ownerId: string, now = Date.now()): ContentItem {
    if (this.items.has(contentId)) throw new ContentExistsError(contentId);
    if (this.items.size >= this.limits.maxContentItems) {
      this.sweep(now);
      if (this.items.size >= this.limits.maxContentItems) throw new ContentLimitError(this.limits.maxContentItems);
    }
    const item: ContentItem = { id: contentId, ownerId, createdAt: now, status: 'running', progress: null, stage: null, updatedAt: now };
    this.items.set(contentId, item);
    return item;
  }

  /** Forgets items that finished more than `contentTtlMs` ago. Running items are kept. */
  sweep(now = Date.now()): void {
    const cutoff = now - this.limits.contentTtlMs;
    for (const [id, item] of this.items) if (item.status !== 'running' && item.updatedAt < cutoff) this.items.delete(id);
  }
}

/** A content id as a request names it (a path parameter): the id, or InvalidContentIdError. */
export function checkContentId(raw: string | undefined): string {
  if (raw === undefined || !isValidContentId(raw)) throw new InvalidContentIdError(raw ?? '', JSON.stringify((raw ?? '').slice(0, 80)), CONTENT_ID_RULE);
  return raw;
}

function recordKey(contentId: string): string {
  return `content:${contentId}`;
}
