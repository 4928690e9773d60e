// Hub topic names for content progress. Every publish goes to two topics: the item's own
// (`content:<id>`, what one progress bar follows) and its owner's (`user:<id>`, the
// seed's per-user feed). Each topic has its own offsets, so each stream resumes exactly.

export const CONTENT_TOPIC_PREFIX = 'content:';
export const USER_TOPIC_PREFIX = 'user:';

/** Content ids: what the simulator generates (UUIDs) and what a service may choose. */
export const CONTENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

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
