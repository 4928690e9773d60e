// Who may read the monitor's operator endpoints (`/api/alerts`, `/dashboard/feed`):
// callers holding the service_role key. `/metrics`, `/healthz` and `/readyz` stay open
// for scrapers and probes (restrict them at the network edge if they must not be public).
import type { IncomingHttpHeaders } from 'node:http';
import { AuthError, tokenFromRequest, isServiceRole, type Claims } from '../core/auth.js';
import type { Gateway } from '../server/gateway.js';
import { HttpError } from '../server/http-errors.js';

export async function requireServiceRole(gateway: Gateway, headers: IncomingHttpHeaders, query: URLSearchParams, what: string): Promise<Claims> {
  let claims: Claims;
  try {
    claims = await gateway.auth.verify(tokenFromRequest(headers, query));
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    gateway.metrics.errors.labels('auth').inc();
    throw new HttpError(401, 'unauthorized', `${err.message}: ${what} needs the service_role key`, { 'www-authenticate': 'Bearer' });
  }
  if (!isServiceRole(claims)) {
    gateway.metrics.errors.labels('auth').inc();
    throw new HttpError(403, 'forbidden', `${what} needs the service_role key (this token has role ${String(claims.role)})`);
  }
  return claims;
}
