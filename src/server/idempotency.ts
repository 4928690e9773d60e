// Idempotency-Key on publishing POSTs (the IETF httpapi draft's header, as Stripe uses
// it): a client that did not get an answer (a timeout, a 503 while the bus was away) can
// retry with the same key, and the retry publishes nothing twice and gets the first answer.
//
// Two layers make that hold across nodes and failures. The first answer is stored as a
// record on the bus for the window (`--idempotency-window-ms`), so a retry on any node
// replays it. And the key becomes the publication's id on the bus, which applies a
// publication id once per topic: a first attempt that failed part-way (its content topic
// took the event, its user topic did not) is completed by the retry, not doubled.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RecordStore } from '../bus/types.js';
import { HttpError } from './http-errors.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** Printable ASCII without spaces, as the draft's examples and Stripe's keys are; UUIDs fit. */
const VALID_KEY = /^[\x21-\x7e]{1,255}$/;

/** An answer to replay: status and JSON body (`null` for an empty one). */
export interface IdempotentAnswer {
  status: number;
  body: unknown;
}

interface StoredAnswer extends IdempotentAnswer {
  /** Hash of the request the key was first used with. */
  request: string;
}

/** The request's Idempotency-Key, or undefined without one; a malformed key is a 400 naming the rule. */
export function idempotencyKeyOf(req: IncomingMessage): string | undefined {
  const raw = req.headers[IDEMPOTENCY_HEADER];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw[0]! : raw;
  if (!VALID_KEY.test(key)) {
    throw new HttpError(400, 'invalid_idempotency_key', 'the Idempotency-Key header must be 1-255 printable ASCII characters without spaces (a UUID, say)');
  }
  return key;
}

/** A short stable hash, for record keys, publication ids and request fingerprints. */
export function digest(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('base64url').slice(0, 32);
}

export class KeyReusedError extends HttpError {
  constructor() {
    super(422, 'idempotency_key_reused', 'this Idempotency-Key was already used with a different request; use a new key for a new request');
    this.name = 'KeyReusedError';
  }
}

export class IdempotencyKeys {
  /** Attempts running on this node, by record key: a concurrent retry waits for the first. */
  private readonly running = new Map<string, { request: string; answer: Promise<IdempotentAnswer> }>();

  constructor(
    private readonly records: RecordStore,
    private readonly windowMs: number,
  ) {}

  /**
   * Runs `attempt` for the key, or replays the answer a previous attempt with this key got.
   * `scope` names whose key it is (the caller and the resource), `request` fingerprints
   * the request (the same key with another request is refused, 422). `attempt` gets the
   * publication id to publish with, and returns the answer to store; an attempt that
   * throws stores nothing, so a retry runs again (and the bus completes what it missed).
   */
  async run(scope: string, key: string, request: string, attempt: (publicationId: string) => Promise<IdempotentAnswer>): Promise<IdempotentAnswer & { replayed: boolean }> {
    const id = digest(scope, key);
    const recordKey = `idem:${id}`;
    const inFlight = this.running.get(recordKey);
    if (inFlight) {
      if (inFlight.request !== request) throw new KeyReusedError();
      return { ...(await inFlight.answer), replayed: true };
    }
    const stored = await this.records.get(recordKey);
    if (stored !== undefined) {
      const first = JSON.parse(stored) as StoredAnswer;
      if (first.request !== request) throw new KeyReusedError();
      return { status: first.status, body: first.body, replayed: true };
    }
    const run = (async () => {
      const answer = await attempt(id);
      const record: StoredAnswer = { ...answer, request };
      await this.records.set(recordKey, JSON.stringify(record), this.windowMs);
      return answer;
    })();
    this.running.set(recordKey, { request, answer: run });
    try {
      return { ...(await run), replayed: false };
    } finally {
      this.running.delete(recordKey);
    }
  }
}
