// HTTP helpers shared by the stream, the long-poll and catch-up requests: the gateway's
// JSON errors (`{"error": {"code", "message"}}`) turned into a typed error that says
// whether to retry, when, and which topic (the `fanout-topic` header) was refused.

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Supplies the key for the next request; called before every connect and poll. */
export type TokenSource = () => string | Promise<string>;

export class FanoutHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The topic the server refused (one of many on a multiplexed request). */
    readonly topic: string | undefined,
    /** From `Retry-After`, in ms. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
    this.name = 'FanoutHttpError';
  }

  /** The key was missing, invalid or expired: get a new one and retry. */
  get isAuth(): boolean {
    return this.status === 401;
  }

  /** One topic of the request cannot be read (unknown, forbidden, invalid): drop it, keep the rest. */
  get isTopicRefusal(): boolean {
    return this.topic !== undefined && this.status >= 400 && this.status < 500 && this.status !== 401 && this.status !== 429;
  }
}

/** Reads an error response into a FanoutHttpError (tolerates bodies that are not the gateway's JSON). */
export async function httpError(res: Response, what: string): Promise<FanoutHttpError> {
  let code = `http_${res.status}`;
  let message = `${what} answered ${res.status} ${res.statusText}`.trim();
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } | unknown; message?: unknown };
    const err = body.error;
    if (err && typeof err === 'object') {
      const e = err as { code?: unknown; message?: unknown };
      if (typeof e.code === 'string') code = e.code;
      if (typeof e.message === 'string') message = e.message;
    } else if (typeof err === 'string') {
      message = err;
    }
  } catch {
    // Not JSON (a proxy's page): keep the status line.
  }
  const topicHeader = res.headers.get('fanout-topic');
  let topic: string | undefined;
  if (topicHeader) {
    try {
      topic = decodeURIComponent(topicHeader);
    } catch {
      topic = topicHeader;
    }
  }
  const retryAfter = res.headers.get('retry-after');
  const seconds = retryAfter !== null && /^\d+(\.\d+)?$/.test(retryAfter.trim()) ? Number(retryAfter) : undefined;
  return new FanoutHttpError(res.status, code, message, topic, seconds === undefined ? undefined : seconds * 1000);
}

/** The claims of a JWT, read without verifying it (the server verifies; the client only groups tabs by user). */
export function tokenClaims(token: string): { sub?: string; role?: string; exp?: number } {
  const part = token.split('.')[1];
  if (!part) return {};
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const json: unknown = JSON.parse(decodeURIComponent(escapeBytes(atob(b64))));
    if (!json || typeof json !== 'object') return {};
    const c = json as Record<string, unknown>;
    return {
      sub: typeof c.sub === 'string' ? c.sub : undefined,
      role: typeof c.role === 'string' ? c.role : undefined,
      exp: typeof c.exp === 'number' ? c.exp : undefined,
    };
  } catch {
    return {};
  }
}

/** Binary string → percent-escapes, so decodeURIComponent turns UTF-8 bytes into text. */
function escapeBytes(binary: string): string {
  let out = '';
  for (let i = 0; i < binary.length; i++) out += '%' + binary.charCodeAt(i).toString(16).padStart(2, '0');
  return out;
}

/** An AbortError, whatever the runtime calls it. */
export function isAbort(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError';
}

/** The message of whatever was thrown (a rejected fetch, a failing `getToken()`). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
