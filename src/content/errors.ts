// Why a content operation was refused. Content code knows nothing of HTTP: each error
// names its category and code (see src/core/errors.ts) and carries the item it concerns;
// src/server/http-errors.ts turns it into the answer.
import { DomainError } from '../core/errors.js';
import type { ContentStatus } from './registry.js';

/** A content id that is not 1-128 of A-Z a-z 0-9 _ . - (or is a reserved word). */
export class InvalidContentIdError extends DomainError {
  constructor(
    readonly contentId: string,
    /** The id as the message shows it (shortened, quoted) and the rule it broke. */
    shown: string,
    rule: string,
  ) {
    super('invalid', 'invalid_content_id', `content id ${shown} is not valid (${rule})`);
  }
}

/** An owner id that is not a valid user id. */
export class InvalidUserIdError extends DomainError {
  constructor(readonly userId: string) {
    super('invalid', 'invalid_user_id', `userId ${JSON.stringify(userId).slice(0, 80)} is not a valid user id`);
  }
}

/** A progress event that fails validation; `problems` names each bad field. */
export class InvalidProgressError extends DomainError {
  constructor(readonly problems: string) {
    super('invalid', 'invalid_progress', `invalid progress event: ${problems}`);
  }
}

export class ContentNotFoundError extends DomainError {
  /** `hint`: what the caller can do about it, appended to the message. */
  constructor(
    readonly contentId: string,
    hint?: string,
  ) {
    super('not_found', 'content_not_found', `content ${contentId} does not exist${hint === undefined ? '' : `; ${hint}`}`);
  }
}

export class ContentExistsError extends DomainError {
  constructor(readonly contentId: string) {
    super('conflict', 'content_exists', `content ${contentId} already exists`);
  }
}

/** The item already ended (`complete` or `failed`): it takes no further events. */
export class ContentFinishedError extends DomainError {
  constructor(
    readonly contentId: string,
    readonly itemStatus: ContentStatus,
  ) {
    super('conflict', 'content_finished', `content ${contentId} already ended with "${itemStatus}"; no further events are accepted`);
  }
}

/** The registry holds its maximum of items; finished ones are forgotten after `contentTtlMs`. */
export class ContentLimitError extends DomainError {
  constructor(readonly maxContentItems: number) {
    super('unavailable', 'too_many_content_items', `the gateway tracks its maximum of ${maxContentItems} content items`, { retryAfterSeconds: 30 });
  }
}

/** The simulator runs its maximum of jobs. */
export class SimulationLimitError extends DomainError {
  constructor(readonly maxJobs: number) {
    super('unavailable', 'too_many_simulations', `the simulator already runs its maximum of ${maxJobs} jobs`, { retryAfterSeconds: 5 });
  }
}
