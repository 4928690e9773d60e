// Authentication as Supabase does it: JWTs signed with the gateway's shared secret
// (HS256/384/512) or, when a JWKS is configured, with an asymmetric key it lists (see
// jwt-keys.ts). `anon` and `service_role` keys are long-lived JWTs; user tokens carry
// `sub` and role `authenticated`. Verification failures are classified with Supabase's
// wording so both the SSE side and the Realtime side can answer in the client's terms.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, jwtVerify, errors as joseErrors, decodeProtectedHeader, type ProtectedHeaderParameters } from 'jose';
import { GENERIC_SIGNER_MESSAGE, SignerError, SUPPORTED_ALGORITHMS, type JwtKeySet } from './jwt-keys.js';
import type { SigningKey } from './jwt-signing.js';

export type Role = 'anon' | 'authenticated' | 'service_role' | (string & {});

export interface Claims {
  role: Role;
  exp: number;
  sub?: string;
  iat?: number;
  iss?: string;
  [claim: string]: unknown;
}

/** `signer`: no key can verify the token (unaccepted algorithm, unknown kid): Supabase's JwtSignerError. `role`: a role not in --allowed-roles. */
export type AuthFailure = 'missing' | 'malformed' | 'signature' | 'expired' | 'claims' | 'signer' | 'role';

/** Messages as the Supabase Realtime server words them (see reference/supabase-realtime-protocol.md §1.1). */
export const authFailureMessage: Record<AuthFailure, string> = {
  missing: 'API key is missing',
  malformed: 'The token provided is not a valid JWT',
  signature: 'Failed to validate JWT signature',
  expired: 'Token has expired',
  claims: 'Fields `role` and `exp` are required in JWT',
  signer: GENERIC_SIGNER_MESSAGE,
  role: 'The role in the JWT is not allowed',
};

/** The roles a JWT may name by default: Supabase's three (see `--allowed-roles`). */
export const DEFAULT_ALLOWED_ROLES: readonly string[] = ['anon', 'authenticated', 'service_role'];

/**
 * Parses `--allowed-roles` (comma-separated PostgreSQL role names). The `role` claim is
 * used for `SET ROLE` when the gateway queries the database on a user's behalf, so a token
 * naming `postgres` (or any role the gateway's login role may assume) would act as that
 * role; only the listed ones are accepted. Throws naming a bad entry.
 */
export function parseAllowedRoles(value: string): ReadonlySet<string> {
  const roles = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (roles.length === 0) throw new Error('name at least one role (the default is anon,authenticated,service_role)');
  for (const role of roles) if (!/^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(role)) throw new Error(`"${role}" is not a PostgreSQL role name`);
  return new Set(roles);
}

export class AuthError extends Error {
  constructor(
    readonly kind: AuthFailure,
    message: string = authFailureMessage[kind],
    /** For `expired`: how many seconds ago the token expired. */
    readonly expiredSecondsAgo?: number,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface SecretSource {
  secret: string;
  /** `env` when FANOUT_JWT_SECRET was set, otherwise the file the development secret lives in. */
  origin: 'env' | 'file';
  /** True when this call generated the development secret. */
  created: boolean;
  path?: string;
}

/** The signing secret is missing or unusable; `fix` says what to do about it. */
export class SecretError extends Error {
  constructor(
    readonly path: string,
    message: string,
    readonly fix: string,
  ) {
    super(message);
    this.name = 'SecretError';
  }
}

/**
 * Returns the signing secret: FANOUT_JWT_SECRET when set, otherwise a development
 * secret generated once and kept (mode 0600) at `<dataDir>/jwt-secret`. With
 * `create: false` (`fanout keys`) a missing development secret is an error, not a new
 * secret that the running gateway would not know.
 */
export function loadSecret(jwtSecret: string | undefined, dataDir: string, { create = true }: { create?: boolean } = {}): SecretSource {
  if (jwtSecret) return { secret: jwtSecret, origin: 'env', created: false };
  const path = join(dataDir, 'jwt-secret');
  if (existsSync(path)) {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret.length < 32) throw new SecretError(path, `the development secret in ${path} is shorter than 32 characters`, 'delete the file to have the gateway generate a new one (keys signed with the old one stop working)');
    return { secret, origin: 'file', created: false, path };
  }
  if (!create) {
    throw new SecretError(
      path,
      `no secret to sign keys with: FANOUT_JWT_SECRET is not set and ${path} does not exist`,
      `give the --data-dir (or FANOUT_DATA_DIR) the gateway uses, or set the FANOUT_JWT_SECRET it uses; \`fanout serve\` generates ${path} on its first start`,
    );
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(path, secret + '\n', { mode: 0o600 });
  return { secret, origin: 'file', created: true, path };
}

const TEN_YEARS_S = 10 * 365 * 24 * 3600;

/** Verified-token cache entry: claims plus the expiry that bounds how long it may be reused. */
interface CachedClaims {
  claims: Claims;
  exp: number;
}

export interface AuthOptions {
  /** Public keys (and `oct` secrets) by kid; without it only the shared secret verifies. */
  keys?: JwtKeySet;
  /** What `sign` signs with; the shared secret (HS256) by default. */
  signingKey?: SigningKey;
  /** Roles a token may name; any other `role` claim is refused at verification (default: DEFAULT_ALLOWED_ROLES). */
  allowedRoles?: ReadonlySet<string>;
}

export class Auth {
  private readonly key: Uint8Array;
  private readonly keys: JwtKeySet | undefined;
  private readonly signingKey: SigningKey;
  private readonly allowedRoles: ReadonlySet<string>;
  /** Load tests reuse a handful of keys across thousands of connections; verifying each once is enough. */
  private readonly cache = new Map<string, CachedClaims>();
  private static readonly CACHE_LIMIT = 10_000;

  constructor(secret: string, options: AuthOptions = {}) {
    this.key = new TextEncoder().encode(secret);
    this.keys = options.keys;
    this.signingKey = options.signingKey ?? { alg: 'HS256', key: this.key };
    this.allowedRoles = options.allowedRoles ?? new Set(DEFAULT_ALLOWED_ROLES);
    // A key taken out of the set must stop verifying the tokens it signed.
    this.keys?.onChange(() => this.cache.clear());
  }

  /** Signs a token with the given claims; `expiresInSeconds` defaults to one hour. */
  async sign(claims: Omit<Claims, 'exp' | 'iat'> & { exp?: number }, expiresInSeconds = 3600): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const { exp, ...rest } = claims;
    const { alg, kid, key } = this.signingKey;
    return new SignJWT({ ...rest })
      .setProtectedHeader({ alg, typ: 'JWT', ...(kid === undefined ? {} : { kid }) })
      .setIssuedAt(now)
      .setExpirationTime(exp ?? now + expiresInSeconds)
      .sign(key);
  }

  /** The project's `anon` and `service_role` keys, as `fanout keys` prints them. */
  async projectKeys(): Promise<{ anon: string; service_role: string }> {
    return {
      anon: await this.sign({ iss: 'fanout', role: 'anon' }, TEN_YEARS_S),
      service_role: await this.sign({ iss: 'fanout', role: 'service_role' }, TEN_YEARS_S),
    };
  }

  /** A token for an application user (role `authenticated`, `sub` = userId). */
  async userToken(userId: string, expiresInSeconds = 3600, extra: Record<string, unknown> = {}): Promise<string> {
    return this.sign({ ...extra, sub: userId, role: 'authenticated' }, expiresInSeconds);
  }

  /** Without a JWKS: the shared secret verifies HS tokens, and nothing verifies the others. */
  private readonly secretFor = (header: ProtectedHeaderParameters): Uint8Array => {
    if (header.alg?.startsWith('HS')) return this.key;
    throw new SignerError(undefined, `an ${header.alg} token needs a JWKS (--jwt-jwks)`);
  };

  /** Verifies a token and returns its claims, or throws an AuthError naming what was wrong. */
  async verify(token: string | undefined | null): Promise<Claims> {
    if (!token) throw new AuthError('missing');
    const nowS = Date.now() / 1000;
    const hit = this.cache.get(token);
    if (hit) {
      if (hit.exp > nowS) return hit.claims;
      this.cache.delete(token);
    }
    if (token.split('.').length !== 3) throw new AuthError('malformed');
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new AuthError('malformed');
    }
    if (!SUPPORTED_ALGORITHMS.includes(header.alg ?? '')) throw new AuthError('signer');
    let payload: Record<string, unknown>;
    try {
      const resolveKey = this.keys ? (h: ProtectedHeaderParameters) => this.keys!.verificationKey(h, this.key) : this.secretFor;
      ({ payload } = await jwtVerify(token, resolveKey, { algorithms: SUPPORTED_ALGORITHMS as string[] }));
    } catch (err) {
      if (err instanceof SignerError) throw new AuthError('signer', err.message);
      if (err instanceof joseErrors.JWTExpired) {
        const exp = Number((err.payload as { exp?: unknown }).exp);
        const ago = Number.isFinite(exp) ? Math.max(0, Math.round(nowS - exp)) : 0;
        throw new AuthError('expired', `${authFailureMessage.expired} ${ago} seconds ago`, ago);
      }
      if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JOSEAlgNotAllowed) throw new AuthError('signature');
      throw new AuthError('malformed');
    }
    if (typeof payload.role !== 'string' || typeof payload.exp !== 'number') throw new AuthError('claims');
    if (!this.allowedRoles.has(payload.role)) {
      throw new AuthError('role', `The role ${JSON.stringify(payload.role.slice(0, 64))} in the JWT is not allowed (allowed: ${[...this.allowedRoles].join(', ')})`);
    }
    const claims = payload as Claims;
    if (this.cache.size >= Auth.CACHE_LIMIT) {
      // Drop the oldest entry (Map iteration is insertion order).
      const first = this.cache.keys().next();
      if (!first.done) this.cache.delete(first.value);
    }
    this.cache.set(token, { claims, exp: claims.exp });
    return claims;
  }
}

/**
 * Extracts a bearer token from the places clients can put one: `Authorization: Bearer`,
 * an `apikey` header, or `?apikey=` / `?access_token=` (EventSource cannot set headers).
 * The Authorization header wins, as it carries the user's session over the project key.
 */
export function tokenFromRequest(headers: Record<string, string | string[] | undefined>, query: URLSearchParams): string | undefined {
  const authz = headers['authorization'];
  if (typeof authz === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(authz.trim());
    if (m) return m[1];
  }
  const apikey = headers['apikey'];
  if (typeof apikey === 'string' && apikey) return apikey;
  return query.get('access_token') ?? query.get('apikey') ?? undefined;
}

/** True when the claims may read or publish anything (Supabase's `service_role`). */
export function isServiceRole(claims: Claims): boolean {
  return claims.role === 'service_role';
}
