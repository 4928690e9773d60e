// What a connection driver gets from the worker that hosts it: the recorder, the
// worker's one task queue (arrivals, reconnects, churn) and the source address to bind.
import type { Recorder } from '../recorder.js';
import type { TaskQueue } from '../min-heap.js';

export interface DriverContext {
  readonly recorder: Recorder;
  readonly tasks: TaskQueue;
  /** Source address for connection `id` (spread over 127.0.0.x for loopback targets), or undefined. */
  localAddress(id: number): string | undefined;
  /** Wall-clock ms (the clock servers stamp with). */
  now(): number;
  /** True once the run is stopping: drops are expected, nothing reconnects. */
  readonly stopping: boolean;
}

/** A short, stable error kind from a Node error: the errno code when there is one. */
export function errorKind(err: unknown): string {
  if (err && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code) return code;
    const message = (err as { message?: unknown }).message;
    if (typeof message === 'string' && message) return message.replace(/\s+/g, '_').slice(0, 60);
  }
  return 'unknown';
}
