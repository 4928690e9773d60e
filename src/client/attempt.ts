// One connection attempt — a stream or a long-poll — and what the transports and the
// source agree on about it: what an attempt is given (`AttemptRequest`), where it hands
// what arrives (`TransportSink`), and how it ends (`Outcome`). The transports know how to
// speak to the gateway; the source and its fallback policy decide what to do with the
// outcome. Keeping this contract in its own file is what lets each side change alone.
import type { FanoutHttpError } from './http.js';
import type { Position, Start } from './position.js';
import type { FanoutErrorInfo, FanoutMessage, ResetInfo } from './types.js';

/** How an attempt ended. */
export type Outcome =
  /** The topic set changed (or the request was aborted for it): reopen at once. */
  | { kind: 'changed' }
  | { kind: 'closed' }
  /** A long-poll answered; poll again. */
  | { kind: 'polled' }
  /** 204: nothing more will come for these topics. */
  | { kind: 'ended'; topics: string[] }
  /** The gateway is draining; reconnect after its (jittered) retry. */
  | { kind: 'shutdown'; retryMs: number }
  /** 401 or `token_expired`: get a new key. */
  | { kind: 'auth'; error: FanoutErrorInfo }
  /** The server refuses one topic; the others carry on. */
  | { kind: 'refused'; topic: string; error: FanoutErrorInfo }
  /** Anything else; `opened`: the stream had reached `ready` (a live stream dropped). */
  | { kind: 'failed'; error: FanoutErrorInfo; opened: boolean; retryAfterMs?: number };

/** One connection attempt (stream or poll): ending it records why and aborts its request. */
export class Attempt {
  readonly controller = new AbortController();
  outcome: Outcome | undefined;
  /** The stream reached `ready` (SSE only). */
  opened = false;

  end(outcome: Outcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.controller.abort();
  }
}

/** What a transport is asked to read: a snapshot of the topic set, each topic's start, and the key. */
export interface AttemptRequest {
  readonly topics: readonly string[];
  readonly starts: readonly Start[];
  readonly token: string;
}

/**
 * Where a transport hands what arrives. The source implements it: it confirms positions
 * in its cursors, drops what belongs to a topic no longer followed, and tells its
 * listener. A transport never holds the topic set itself; it reads `follows` instead.
 */
export interface TransportSink {
  /** The topic is still followed (the set may change while an attempt runs). */
  follows(topic: string): boolean;
  /** The stream's `ready`: it is live, and everything up to `positions` (one per request topic) was sent. */
  opened(topics: readonly string[], positions: readonly Position[]): void;
  /** A poll's `lastEventId`: everything up to `positions` (one per request topic) was sent. */
  checkpoint(topics: readonly string[], positions: readonly Position[]): void;
  /** An event; `position` is undefined for a message that is not retained. */
  message(message: FanoutMessage, position: Position | undefined): void;
  reset(info: ResetInfo): void;
}

/** An error the client noticed itself (not an HTTP answer). */
export function failure(code: string, message: string): FanoutErrorInfo {
  return { code, message, fatal: false };
}

/** An error answer as the app sees it; `fatal` when it ends the subscriptions of its topic. */
export function errorInfo(err: FanoutHttpError, fatal = false): FanoutErrorInfo {
  return { code: err.code, message: err.message, fatal, status: err.status, ...(err.topic === undefined ? {} : { topic: err.topic }) };
}

/** The outcome of an error answer: a new key, one topic dropped, or a failure to retry. */
export function classify(err: FanoutHttpError, opened: boolean, sink: Pick<TransportSink, 'follows'>): Outcome {
  if (err.isAuth) return { kind: 'auth', error: errorInfo(err) };
  if (err.isTopicRefusal && err.topic !== undefined && sink.follows(err.topic)) return { kind: 'refused', topic: err.topic, error: errorInfo(err, true) };
  return { kind: 'failed', error: errorInfo(err), opened, retryAfterMs: err.retryAfterMs };
}
