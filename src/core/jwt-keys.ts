// The keys that verify JWTs, chosen as Supabase Realtime chooses them
// (lib/realtime_web/channels/auth/jwt_verification.ex, `generate_signer`):
//  - HS256/384/512: the `oct` key of the JWKS whose `kid` the token names, else the shared
//    secret (GoTrue's HS256 tokens carry a kid but their key is never published);
//  - RS256/384/512, ES256/384/512, EdDSA (Ed25519): the JWKS key with the token's `kid` and
//    the key type the algorithm needs. No kid, or no such key, is a signer error; an HS
//    token is never checked against a public key, so a public key used as an HMAC secret
//    fails on its signature;
//  - anything else (`none`, PS256, ...): a signer error.
//
// The JWKS is given inline, as a file, or as a URL (GoTrue publishes one at
// /auth/v1/.well-known/jwks.json). It is read at start-up, kept, re-read every
// `refreshMs` (so a key taken out of the set stops verifying), and re-read at once when a
// token names a kid it does not have — at most once per `cooldownMs`, so tokens with
// made-up kids cannot turn the gateway into a load generator against the JWKS host. A
// failed read keeps the keys already held. Several keys at once is the normal case: a key
// is rotated by publishing the new one beside the old one.
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWK, type JWSHeaderParameters, type LocalJWKSet } from 'jose';
import { redactUrl, type Logger } from './log.js';

export const HS_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
/** Supabase also accepts Ed448, which jose (WebCrypto) cannot verify; GoTrue never issues it. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
export const SUPPORTED_ALGORITHMS: readonly string[] = [...HS_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS];

export const GENERIC_SIGNER_MESSAGE = 'Failed to generate JWT signer, check your JWT secret or JWKS configuration';

/** No key can verify the token (Supabase's `JwtSignerError`), worded as Supabase words it. */
export class SignerError extends Error {
  constructor(
    readonly kid: string | undefined,
    /** Why, for logs: the algorithm is not accepted, the kid is unknown, the key cannot be used. */
    readonly reason: string,
  ) {
    super(kid === undefined ? GENERIC_SIGNER_MESSAGE : `Failed to generate JWT signer for key ID (kid) ${JSON.stringify(kid)}, check your JWT secret or JWKS configuration`);
    this.name = 'SignerError';
  }
}

export type JwksSource = { kind: 'inline'; jwks: JSONWebKeySet } | { kind: 'file'; path: string } | { kind: 'url'; url: string };

/** Checks that `value` is a JSON Web Key Set (`{"keys": [{"kty": ...}, ...]}`); throws saying what is wrong. */
export function parseJwks(text: string): JSONWebKeySet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON (${(err as Error).message})`, { cause: err });
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error('not a JWKS: expected an object {"keys": [...]}');
  keys.forEach((k, i) => {
    if (typeof k !== 'object' || k === null || typeof (k as JWK).kty !== 'string') throw new Error(`not a JWKS: keys[${i}] is not a JWK (no "kty")`);
  });
  return { keys: keys as JWK[] };
}

/** Where `--jwt-jwks` points: inline JSON (starts with `{`), an http(s) URL, or a file path. */
export function parseJwksSource(value: string): JwksSource {
  const trimmed = value.trim();
  if (trimmed.startsWith('{')) return { kind: 'inline', jwks: parseJwks(trimmed) };
  if (/^https?:\/\//i.test(trimmed)) {
    try {
      return { kind: 'url', url: new URL(trimmed).toString() };
    } catch {
      throw new Error(`not a valid URL: ${redactUrl(trimmed)}`);
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) throw new Error('a JWKS URL must be http:// or https://');
  return { kind: 'file', path: trimmed };
}

/** An error as one line; fetch's "fetch failed" gets its cause (ECONNREFUSED, ENOTFOUND, ...). */
function failureText(err: unknown): string {
  const e = err as Error & { cause?: { code?: string }; code?: string };
  if (e.cause?.code) return `${e.message} (${e.cause.code})`;
  return e.code && !e.message.includes(e.code) ? `${e.message} (${e.code})` : e.message;
}

function describe(source: JwksSource): string {
  if (source.kind === 'url') return redactUrl(source.url);
  if (source.kind === 'file') return source.path;
  return 'inline JWKS';
}

/** Public members only: a private key listed by mistake must not become a verification key. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'] as const;

function publicOnly(jwk: JWK): JWK {
  if (jwk.kty === 'oct') return jwk;
  const copy: Record<string, unknown> = { ...jwk };
  for (const m of PRIVATE_MEMBERS) delete copy[m];
  return copy as JWK;
}

export interface JwksStatus {
  source: string;
  /** Keys held now. */
  keys: number;
  kids: string[];
  /** When the keys were last read successfully (ms since the epoch); undefined if never. */
  loadedAt: number | undefined;
  /** The last failure, if the last read failed. */
  lastError: string | undefined;
}

export interface JwtKeySetOptions {
  source: JwksSource;
  /** Minimum time between two reads caused by unknown kids. */
  cooldownMs: number;
  /** Period of re-reading a URL or file. */
  refreshMs: number;
  /** Deadline of one HTTP fetch. */
  fetchTimeoutMs?: number;
  log: Logger;
  /** Told about every read (metrics). */
  onRead?: (ok: boolean, keys: number) => void;
}

export class JwtKeySet {
  private jwks: JSONWebKeySet = { keys: [] };
  private local: LocalJWKSet = createLocalJWKSet({ keys: [] });
  private fingerprint = '[]';
  private loadedAt: number | undefined;
  private lastError: string | undefined;
  private lastRead = 0;
  private reading: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly listeners: (() => void)[] = [];
  private readonly where: string;

  constructor(private readonly o: JwtKeySetOptions) {
    this.where = describe(o.source);
  }

  /**
   * Reads the keys for the first time. An inline set or a file that cannot be read or is not
   * a JWKS throws (a configuration mistake, found at start-up); a URL that cannot be fetched
   * is logged and retried, and asymmetric tokens are refused until it is.
   */
  async start(): Promise<void> {
    const ok = await this.read('start-up');
    if (!ok && this.o.source.kind !== 'url') throw new Error(this.lastError);
    this.schedule();
  }

  /** Called whenever the set of keys changes (the verifier drops tokens it verified with the old set). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  status(): JwksStatus {
    return {
      source: this.where,
      keys: this.jwks.keys.length,
      kids: this.jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'),
      loadedAt: this.loadedAt,
      lastError: this.lastError,
    };
  }

  /**
   * The key that verifies a token with this header (see the top of this file), re-reading
   * the JWKS once when an asymmetric token names an unknown kid. Throws SignerError.
   */
  async verificationKey(header: JWSHeaderParameters, secret: Uint8Array): Promise<CryptoKey | Uint8Array> {
    const { alg, kid } = header;
    if ((HS_ALGORITHMS as readonly string[]).includes(alg ?? '')) return (typeof kid === 'string' && this.octKey(kid)) || secret;
    if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg ?? '')) throw new SignerError(undefined, `algorithm ${JSON.stringify(alg)} is not accepted`);
    if (typeof kid !== 'string') throw new SignerError(undefined, `an ${alg} token must name its key (kid)`);
    const held = await this.lookup(header, kid);
    if (held) return held;
    if (await this.refetch(`a token names the unknown kid ${JSON.stringify(kid)}`)) {
      const fetched = await this.lookup(header, kid);
      if (fetched) return fetched;
    }
    throw new SignerError(kid, `no ${alg} key with this kid in ${this.where}`);
  }

  /** The held key for this header; undefined when there is none; the first of several, as Supabase's Enum.find takes. */
  private async lookup(header: JWSHeaderParameters, kid: string): Promise<CryptoKey | undefined> {
    try {
      return await this.local(header);
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey) return undefined;
      if (err instanceof joseErrors.JWKSMultipleMatchingKeys) {
        for await (const key of err) return key;
      }
      throw new SignerError(kid, `the key cannot verify ${header.alg}: ${(err as Error).message}`);
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Supabase takes an `oct` key's secret whatever the token's HS variant is. */
  private octKey(kid: string): Uint8Array | undefined {
    const jwk = this.jwks.keys.find((k) => k.kty === 'oct' && k.kid === kid && typeof k.k === 'string');
    return jwk ? new Uint8Array(Buffer.from(jwk.k!, 'base64url')) : undefined;
  }

  /** A read for an unknown kid, unless one happened within the cooldown. True when the keys changed. */
  private async refetch(why: string): Promise<boolean> {
    if (this.o.source.kind === 'inline' || this.closed) return false;
    if (!this.reading && Date.now() - this.lastRead < this.o.cooldownMs) return false;
    const before = this.fingerprint;
    await this.read(why);
    return this.fingerprint !== before;
  }

  /** One read at a time: concurrent callers share it. Resolves true on success. */
  private read(why: string): Promise<boolean> {
    this.reading ??= this.load(why).finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async load(why: string): Promise<boolean> {
    this.lastRead = Date.now();
    let jwks: JSONWebKeySet;
    try {
      jwks = await this.fetchKeys();
    } catch (err) {
      const message = `could not read the JWKS from ${this.where}: ${failureText(err)}`;
      const first = this.lastError === undefined;
      this.lastError = message;
      this.o.onRead?.(false, this.jwks.keys.length);
      const held = this.jwks.keys.length ? `keeping the ${this.jwks.keys.length} keys already held` : 'tokens signed with its keys are refused until it is read';
      // A file or inline set that cannot be read at start-up stops the gateway: `start` throws, the caller says why.
      if (why === 'start-up' && this.o.source.kind !== 'url') return false;
      if (first || why === 'start-up') this.o.log.error({ reason: why }, `${message}; ${held}`);
      else this.o.log.warn({ reason: why }, message);
      return false;
    }
    const keys = jwks.keys.map(publicOnly);
    const fingerprint = JSON.stringify(keys);
    const changed = fingerprint !== this.fingerprint;
    this.jwks = { keys };
    this.fingerprint = fingerprint;
    this.local = createLocalJWKSet(this.jwks);
    this.loadedAt = Date.now();
    if (this.lastError !== undefined && why !== 'start-up') this.o.log.info({ source: this.where }, 'JWKS readable again');
    this.lastError = undefined;
    this.o.onRead?.(true, keys.length);
    if (changed) {
      this.o.log.info({ source: this.where, kids: this.status().kids, reason: why }, `JWKS loaded: ${keys.length} keys`);
      for (const listener of this.listeners) listener();
    }
    return true;
  }

  private async fetchKeys(): Promise<JSONWebKeySet> {
    const source = this.o.source;
    if (source.kind === 'inline') return source.jwks;
    if (source.kind === 'file') return parseJwks(await readFile(source.path, 'utf8'));
    const res = await fetch(source.url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.o.fetchTimeoutMs ?? 5000), redirect: 'follow' });
    const text = await res.text();
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
    return parseJwks(text);
  }

  /** The next periodic read: the refresh period, or the cooldown while the last read failed. */
  private schedule(): void {
    if (this.closed || this.o.source.kind === 'inline') return;
    const delay = this.lastError === undefined ? this.o.refreshMs : Math.max(1000, this.o.cooldownMs);
    this.timer = setTimeout(() => {
      void this.read('periodic refresh').then(() => this.schedule());
    }, delay);
    this.timer.unref();
  }
}
