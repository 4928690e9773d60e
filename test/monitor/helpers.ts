// Test helpers for the monitor: a Prometheus text parser, an SSE reader for the
// dashboard feed, and polling until a condition holds.
import { request, type IncomingMessage, type ClientRequest } from 'node:http';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/core/log.js';

/** Parses Prometheus text into `series → value`, the series written `name{a="x",b="y"}` with labels sorted. */
export function parseMetrics(text: string): { values: Map<string, number>; types: Map<string, string> } {
  const values = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name!, type!);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels = m[2] ? [...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`).sort().join(',') : '';
    values.set(labels ? `${m[1]}{${labels}}` : m[1]!, Number(m[3]));
  }
  return { values, types };
}

export async function scrape(baseUrl: string): Promise<{ get(series: string): number | undefined; values: Map<string, number>; types: Map<string, string>; text: string }> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const text = await res.text();
  const parsed = parseMetrics(text);
  return { ...parsed, text, get: (series) => parsed.values.get(series) };
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface SseEvent {
  event: string;
  data: unknown;
}

/** A dashboard-feed client over raw node:http, collecting every event it receives. */
export class FeedClient {
  readonly events: SseEvent[] = [];
  status = 0;
  body = '';
  ended = false;
  private req: ClientRequest | undefined;
  private res: IncomingMessage | undefined;

  static async open(url: string, headers: Record<string, string> = {}): Promise<FeedClient> {
    const client = new FeedClient();
    await client.connect(url, headers);
    return client;
  }

  private connect(url: string, headers: Record<string, string>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.req = request(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false });
      this.req.on('error', (err) => (this.status ? undefined : reject(err)));
      this.req.on('response', (res) => {
        this.res = res;
        this.status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          this.body += chunk;
          buffer += chunk;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            this.dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        });
        res.on('end', () => (this.ended = true));
        res.on('close', () => (this.ended = true));
        resolve();
      });
      this.req.end();
    });
  }

  private dispatch(block: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length) this.events.push({ event, data: JSON.parse(data.join('\n')) as unknown });
  }

  of<T = unknown>(event: string): T[] {
    return this.events.filter((e) => e.event === event).map((e) => e.data as T);
  }

  next<T = unknown>(event: string, match: (data: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
    return waitFor(`a "${event}" event`, () => this.of<T>(event).find(match), timeoutMs);
  }

  close(): void {
    this.res?.destroy();
    this.req?.destroy();
  }
}

export interface DashboardPointData {
  t: number;
  v: Record<string, number | null>;
}
export interface SampleData {
  point: DashboardPointData;
  busiest: { topic: string; subscribers: number; publishedPerSecond: number; deliveredPerSecond: number; offset?: number }[];
  active: { rule: string; state: string }[];
}

/** A JSON logger whose output the test can read (`text`, `lines`). */
export function captureLogger(level = 'trace'): { logger: Logger; text(): string; lines(): Record<string, unknown>[] } {
  let out = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out += chunk.toString('utf8');
      done();
    },
  });
  const logger = createLogger({ level, pretty: false, destination: sink });
  return {
    logger,
    text: () => out,
    lines: () =>
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
