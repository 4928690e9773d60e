// Progress topics: the contract between the side that publishes content progress
// (src/content) and the side that streams it (src/sse), which do not import each other.
//
// Topic names: every publish goes to two topics: the item's own (`content:<id>`, what one
// progress bar follows) and its owner's (`user:<id>`, the seed's per-user feed). Each
// topic has its own offsets, so each stream resumes exactly. An item's stream ends with
// one of the final events; who may read a topic is `canReadUser`.
import { isServiceRole, type Claims } from './auth.js';
import { DomainError } from './errors.js';

export const CONTENT_TOPIC_PREFIX = 'content:';
export const USER_TOPIC_PREFIX = 'user:';

/** Content ids: what the simulator generates (UUIDs) and what a service may choose. */
export const CONTENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** `CONTENT_ID_PATTERN` in words, for error messages. */
export const CONTENT_ID_RULE = '1-128 of A-Z a-z 0-9 _ . -';

/** `progress` would collide with the static path `/api/content/progress`. */
const RESERVED_CONTENT_IDS = new Set(['progress']);

/** User ids come from JWT `sub` claims, so anything printable up to 256 characters is accepted. */
const USER_ID_PATTERN = /^[^\s\p{Cc},]{1,256}$/u;

export const contentTopic = (contentId: string): string => CONTENT_TOPIC_PREFIX + contentId;
export const userTopic = (userId: string): string => USER_TOPIC_PREFIX + userId;

export function isValidContentId(id: string): boolean {
  return CONTENT_ID_PATTERN.test(id) && !RESERVED_CONTENT_IDS.has(id);
}

export function isValidUserId(id: string): boolean {
  return USER_ID_PATTERN.test(id);
}

export type ParsedTopic = { kind: 'content'; id: string } | { kind: 'user'; id: string };

/** Parses a progress topic name; undefined for anything that is not `content:<id>` or `user:<id>`. */
export function parseProgressTopic(topic: string): ParsedTopic | undefined {
  if (topic.startsWith(CONTENT_TOPIC_PREFIX)) {
    const id = topic.slice(CONTENT_TOPIC_PREFIX.length);
    return isValidContentId(id) ? { kind: 'content', id } : undefined;
  }
  if (topic.startsWith(USER_TOPIC_PREFIX)) {
    const id = topic.slice(USER_TOPIC_PREFIX.length);
    return isValidUserId(id) ? { kind: 'user', id } : undefined;
  }
  return undefined;
}

/** Events that end a content item: after one of them no further progress is accepted, and its stream ends. */
export const FINAL_EVENTS: ReadonlySet<string> = new Set(['complete', 'failed']);

/** A user reads their own content's progress; service_role reads everyone's. */
export function canReadUser(claims: Claims, ownerId: string): boolean {
  return isServiceRole(claims) || (claims.sub !== undefined && claims.sub === ownerId);
}

/** A user reading another user's progress; `what` names what was refused. */
export class ReadForbiddenError extends DomainError {
  constructor(readonly what: string) {
    super('forbidden', 'forbidden', `this key may not read ${what}: a user reads only their own content (service_role reads all)`);
  }
}
