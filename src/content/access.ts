// Who may read content progress: a user reads their own content's progress;
// service_role reads everyone's.
import { isServiceRole, type Claims } from '../core/auth.js';
import { HttpError } from '../server/http-errors.js';

/** A user reads their own content's progress; service_role reads everyone's. */
export function canReadUser(claims: Claims, ownerId: string): boolean {
  return isServiceRole(claims) || (claims.sub !== undefined && claims.sub === ownerId);
}

/** 403 naming what was refused, for a user reading another user's progress. */
export function forbiddenRead(what: string): HttpError {
  return new HttpError(403, 'forbidden', `this key may not read ${what}: a user reads only their own content (service_role reads all)`);
}
