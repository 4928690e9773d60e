// Optional alert webhook: each firing/resolved event is POSTed as JSON to the configured
// URL, one at a time and in order (a receiver never sees "resolved" before "firing"),
// with a timeout and a bounded number of retries. The queue is bounded too: a receiver
// that is down for hours costs a fixed amount of memory, and drops are logged.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../core/log.js';
import type { WebhookConfig } from './alert-rules.js';
import type { AlertEvent } from './alerts.js';

const QUEUE_LIMIT = 1000;

export interface WebhookPayload {
  source: 'fanout';
  /** The gateway's URL, so one receiver can tell several gateways apart. */
  instance: string;
  status: AlertEvent['status'];
  alert: AlertEvent;
}

export class AlertWebhook {
  private readonly queue: WebhookPayload[] = [];
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly config: WebhookConfig,
    private readonly log: Logger,
    private readonly onFailure: () => void,
    /** Back-off before retry n (1-based); tests shorten it. */
    private readonly backoffMs: (attempt: number) => number = (n) => 500 * 2 ** (n - 1),
  ) {}

  send(event: AlertEvent, instance: string): void {
    if (this.stopped) return;
    if (this.queue.length >= QUEUE_LIMIT) {
      const dropped = this.queue.shift()!;
      this.log.warn({ rule: dropped.alert.rule, status: dropped.status }, 'alert webhook queue full: dropped the oldest event');
    }
    this.queue.push({ source: 'fanout', instance, status: event.status, alert: event });
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** Gives queued events up to `ms` to go out, then abandons the rest. */
  async flush(ms: number): Promise<void> {
    if (this.running) await Promise.race([this.running, new Promise((r) => setTimeout(r, ms).unref())]);
    this.stopped = true;
    this.queue.length = 0;
  }

  private async drain(): Promise<void> {
    for (let payload = this.queue.shift(); payload; payload = this.queue.shift()) {
      const body = JSON.stringify(payload);
      for (let attempt = 0; ; attempt++) {
        const problem = await this.post(body);
        if (!problem) break;
        if (attempt >= this.config.retries || this.stopped) {
          this.onFailure();
          // The target URL is logged without its query, which may carry a credential; headers never are.
          this.log.warn({ rule: payload.alert.rule, status: payload.status, target: redactUrl(this.config.url), attempts: attempt + 1, problem }, 'alert webhook delivery failed');
          break;
        }
        await new Promise((r) => setTimeout(r, this.backoffMs(attempt + 1)).unref());
      }
    }
  }

  /** One POST; resolves with a description of what went wrong, or undefined on a 2xx. */
  private post(body: string): Promise<string | undefined> {
    return new Promise((resolve) => {
      const url = new URL(this.config.url);
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(url, {
        method: 'POST',
        agent: false,
        timeout: this.config.timeoutMs,
        headers: { ...this.config.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'fanout-alerts' },
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode && res.statusCode < 300 ? undefined : `HTTP ${res.statusCode}`));
        res.on('error', (err) => resolve(err.message));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.config.timeoutMs} ms`)));
      req.on('error', (err) => resolve(err.message));
      req.end(body);
    });
  }
}

function redactUrl(raw: string): string {
  const u = new URL(raw);
  u.username = '';
  u.password = '';
  u.search = '';
  return u.toString();
}
