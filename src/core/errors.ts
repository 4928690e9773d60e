// The errors of the domain layers (core, bus, content): what went wrong, in terms that
// mean the same to every transport. A domain error names its category (modeled on gRPC's
// canonical codes, which exist for exactly this: a status a transport can translate) and
// a stable machine-readable code, the `error.code` clients match on; it never names an
// HTTP status. `httpErrorOf` in src/server/http-errors.ts is the one place that turns
// them into status, code, message and headers; a WebSocket reply uses the code as its
// reason (`bus_unavailable`).

/**
 * What kind of refusal an error is:
 *   invalid     the input is malformed (a bad id, an event that fails validation)
 *   forbidden   the caller is known but may not do this
 *   not_found   what the input names does not exist
 *   conflict    the input is fine but the target's state refuses it (already exists, already finished)
 *   unavailable a dependency or a capacity is exhausted for now: try again later
 */
export type ErrorCategory = 'invalid' | 'forbidden' | 'not_found' | 'conflict' | 'unavailable';

export interface DomainErrorOptions {
  /** For `unavailable`: how long a client should wait before trying again. */
  retryAfterSeconds?: number;
  cause?: unknown;
}

/** Base of every error a domain layer throws for a transport to answer (see the header). */
export abstract class DomainError extends Error {
  /** For `unavailable`: how long a client should wait before trying again. */
  readonly retryAfterSeconds?: number;

  constructor(
    readonly category: ErrorCategory,
    /** Stable machine-readable reason (`content_not_found`), the same on every transport. */
    readonly code: string,
    message: string,
    options: DomainErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}
