// Authentication and error accounting shared by every HTTP route: keys arrive the ways
// `tokenFromRequest` accepts (EventSource cannot set headers, so the query forms matter).
// Missing or invalid keys answer 401 with Supabase's wording; a valid key without the
// right answers 403.
import type { IncomingMessage } from 'node:http';
import { isServiceRole, tokenFromRequest, type Auth, type Claims } from '../core/auth.js';
import { HttpError, httpErrorOf } from './http-errors.js';
import { addressIdentity, userIdentity } from './connections.js';
import type { GatewayMetrics } from './metrics.js';
import type { RouteHandler } from './router.js';

/**
 * Verifies the request's key and returns its claims. A missing or invalid key throws the
 * AuthError, which `httpErrorOf` answers as a 401 in Supabase's wording.
 */
export async function authenticate(auth: Auth, req: IncomingMessage, query: URLSearchParams): Promise<Claims> {
  return auth.verify(tokenFromRequest(req.headers, query));
}

/**
 * The identity a connection counts against in the per-identity cap: the user whose
 * progress it carries. A user's token reads only their own, so that is the token's `sub`;
 * a service_role stream on behalf of one user (`readsFor`) counts against that user, so a
 * backend relaying many users' streams is not capped as one user. A key without a user
 * (anon, service_role) counts against the client's address, so one client cannot use up
 * the cap of everyone holding the same public key.
 */
export function userKeyOf(claims: Claims, address: string, readsFor?: string): string {
  if (readsFor !== undefined && isServiceRole(claims)) return userIdentity(readsFor);
  return claims.sub !== undefined ? userIdentity(claims.sub) : addressIdentity(address);
}

export function requireServiceRole(claims: Claims, action: string): void {
  if (!isServiceRole(claims)) throw new HttpError(403, 'forbidden', `${action} requires the service_role key`);
}

/** The `fanout_errors_total` kind for an HTTP error status. */
export function errorKind(status: number): string {
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 429) return 'rate_limit';
  if (status === 503) return 'unavailable';
  if (status >= 500) return 'internal';
  return 'bad_request';
}

/** Wraps a route so every error it answers is counted by kind before the router sends it. */
export function countingErrors(metrics: GatewayMetrics, handler: RouteHandler): RouteHandler {
  return async (ctx) => {
    try {
      await handler(ctx);
    } catch (err) {
      const answer = httpErrorOf(err);
      metrics.errors.labels(answer ? errorKind(answer.status) : 'internal').inc();
      throw err;
    }
  };
}
