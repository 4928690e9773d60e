// Helpers for the SSE tests: the real `eventsource` client with a key, a raw HTTP SSE
// reader (to see comments, `retry:` and exact frames), and a TCP proxy whose sockets a
// test can cut to simulate a dropped network connection.
import { request, type IncomingHttpHeaders } from 'node:http';
import { EventSource } from 'eventsource';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

export interface EventData {
  seq?: number;
  ts?: number;
  topic?: string;
  progress?: number;
  code?: string;
  reason?: string;
  [field: string]: unknown;
}

export interface Received {
  type: string;
  id: string;
  data: EventData;
}

export const EVENT_TYPES = ['progress', 'complete', 'failed', 'ready', 'reset', 'error', 'shutdown'];

export interface Client {
  es: EventSource;
  events: Received[];
  /** Connection-level errors (not server-sent `event: error`). */
  failures: number;
  opens: number;
  of(type: string): Received[];
  close(): void;
}

/** Opens the real `eventsource` client, sending the key as `Authorization: Bearer` unless it is in the URL. */
export function openClient(url: string, token?: string, headers: Record<string, string> = {}): Client {
  const es = new EventSource(url, {
    fetch: (input, init) =>
      fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } }),
  });
  const client: Client = {
    es,
    events: [],
    failures: 0,
    opens: 0,
    of: (type) => client.events.filter((e) => e.type === type),
    close: () => es.close(),
  };
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, (e: Event) => {
      const data = (e as MessageEvent).data as unknown;
      if (typeof data !== 'string') {
        client.failures++; // a connection error, not a server-sent event
        return;
      }
      client.events.push({ type, id: (e as MessageEvent).lastEventId, data: JSON.parse(data) as EventData });
    });
  }
  es.addEventListener('open', () => void client.opens++);
  return client;
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const seqs = (events: Received[]): number[] => events.map((e) => e.data.seq!);

/** One parsed SSE block as it appeared on the wire (comments kept). */
export interface RawFrame {
  comments: string[];
  fields: Record<string, string>;
}

export interface RawStream {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body so far, as text. */
  text(): string;
  frames(): RawFrame[];
  ended: Promise<void>;
  destroy(): void;
}

/** Parses SSE text into blocks; a trailing incomplete block is left out. */
export function parseFrames(text: string): RawFrame[] {
  const blocks = text.split('\n\n');
  blocks.pop();
  return blocks.map((block) => {
    const frame: RawFrame = { comments: [], fields: {} };
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) frame.comments.push(line.slice(1).trim());
      else if (line) {
        const i = line.indexOf(':');
        const name = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        frame.fields[name] = name in frame.fields ? `${frame.fields[name]}\n${value}` : value;
      }
    }
    return frame;
  });
}

/** A raw HTTP GET that resolves with the response head and keeps reading the body. */
export function rawGet(url: string, headers: Record<string, string> = {}): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      const ended = new Promise<void>((done) => {
        res.on('end', () => done());
        res.on('close', () => done());
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => body,
        frames: () => parseFrames(body),
        ended,
        destroy: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A plain JSON request; returns status, headers and the parsed body. */
export async function http(
  method: string,
  url: string,
  options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> & { error?: { code: string; message: string } } }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A TCP proxy in front of the gateway; `cut()` drops every connection through it, like a network failure. */
export type DropProxy = TcpProxy;
export const startDropProxy = startTcpProxy;
