// Helpers for the client-library tests: network faults between the client and a real
// gateway, and a recorder that checks what a subscription delivered.
//
// - `startTcpProxy` (test/helpers/tcp-proxy.ts): cut, block or retarget connections.
// - `startBufferingProxy`: an HTTP proxy that, while `buffering` is on, holds response
//   bodies until 64 KB have accumulated or the response ends — what nginx does with
//   `proxy_buffering on` to an SSE stream: the headers pass, the events do not.
import { createServer as createHttpServer, request, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { splice } from '../helpers/tcp-proxy.js';
import type { FanoutMessage, Subscription } from '../../src/client/index.js';
import type { MessageData } from '../../src/client/types.js';

export interface BufferingProxy {
  url: string;
  /** On: hold response bodies (64 KB or the end); off: pass them through as they come. */
  buffering: boolean;
  /** Off: refuse WebSocket upgrades with 502 (a proxy or firewall without WebSocket support). */
  websockets: boolean;
  /** Drops the WebSockets already passed through. */
  cutWebSockets(): void;
  /** Requests seen, by path (`/v1/stream`, `/v1/poll`, …). */
  requests: Map<string, number>;
  close(): Promise<void>;
}

const BUFFER_BYTES = 64 * 1024;

export async function startBufferingProxy(targetUrl: string, buffering = true, websockets = true): Promise<BufferingProxy> {
  const target = new URL(targetUrl);
  const open = new Set<ServerResponse>();
  const tunnels = new Set<Socket>();
  const proxy: BufferingProxy = {
    url: '',
    buffering,
    websockets,
    cutWebSockets: () => {
      for (const s of tunnels) s.destroy();
    },
    requests: new Map(),
    close: async () => undefined,
  };
  const server: HttpServer = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    proxy.requests.set(path, (proxy.requests.get(path) ?? 0) + 1);
    const holdBody = proxy.buffering;
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      res.flushHeaders();
      open.add(res);
      let held: Buffer[] = [];
      let heldBytes = 0;
      up.on('data', (chunk: Buffer) => {
        if (!holdBody) return void res.write(chunk);
        held.push(chunk);
        heldBytes += chunk.length;
        if (heldBytes >= BUFFER_BYTES) {
          res.write(Buffer.concat(held));
          held = [];
          heldBytes = 0;
        }
      });
      up.on('end', () => {
        if (held.length) res.write(Buffer.concat(held));
        res.end();
      });
      up.on('error', () => res.destroy());
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.on('close', () => {
      open.delete(res);
      upstream.destroy();
    });
    req.pipe(upstream);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (!proxy.websockets) {
      socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    upstream.write(lines.join('\r\n') + '\r\n\r\n');
    if (head.length) upstream.write(head);
    splice(socket, upstream, tunnels);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      proxy.cutWebSockets();
      for (const res of open) res.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

/** Everything a subscription delivered, in order. */
export interface Recorder<T extends MessageData = MessageData> {
  messages: FanoutMessage<T>[];
  seqs(topic?: string): number[];
  resets: { topic: string; reason: string; state: unknown }[];
  errors: string[];
  ends: string[];
  states: string[];
}

export function record<T extends MessageData>(sub: Subscription<T>): Recorder<T> {
  const r: Recorder<T> = {
    messages: [],
    seqs: (topic) => r.messages.filter((m) => topic === undefined || m.topic === topic).map((m) => m.seq),
    resets: [],
    errors: [],
    ends: [],
    states: [],
  };
  sub.on('message', (m) => void r.messages.push(m));
  sub.on('reset', (x) => void r.resets.push({ topic: x.topic, reason: x.reason, state: x.state }));
  sub.on('error', (e) => void r.errors.push(e.code));
  sub.on('end', (e) => void r.ends.push(e.reason));
  sub.on('state', (s) => void r.states.push(s));
  return r;
}

/** 1..n */
export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
