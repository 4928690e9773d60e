// Shared pieces of the Realtime tests: a gateway with the error back-off sleeps at 0 and
// a fast sweep, the unmodified supabase-js client on Node 20 (`transport: WebSocket` from
// `ws`), and a raw Phoenix client for what supabase-js never sends.
import { createClient, type RealtimeChannel, type SupabaseClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import type { GatewayConfig } from '../../src/core/config.js';
import type { GatewayOptions } from '../../src/server/gateway.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

export async function startRealtimeGateway(overrides: Partial<GatewayConfig> = {}, options: GatewayOptions = {}): Promise<TestGateway> {
  return startGateway({ realtimeConnectErrorBackoffMs: 0, realtimeChannelErrorBackoffMs: 0, ...overrides }, { sweepMs: 50, processMetrics: false, ...options });
}

export interface ClientOptions {
  /** Push timeout (join, ack, track); supabase-js defaults to 10 s. */
  timeout?: number;
  heartbeatIntervalMs?: number;
  heartbeatCallback?: (status: string) => void;
  vsn?: string;
}

const clients: SupabaseClient[] = [];

/** An unmodified supabase-js client pointed at the gateway. */
export function supabase(gw: TestGateway, key = gw.keys.anon, realtime: ClientOptions = {}): SupabaseClient {
  const client = createClient(gw.url, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket as never, ...realtime } as never,
  });
  clients.push(client);
  return client;
}

/** Disconnects every client made by `supabase()` (call in afterEach/afterAll). */
export async function closeClients(): Promise<void> {
  for (const c of clients.splice(0)) {
    await c.removeAllChannels();
    await c.realtime.disconnect();
  }
}

export type Status = 'SUBSCRIBED' | 'TIMED_OUT' | 'CLOSED' | 'CHANNEL_ERROR';

/** Subscribes and records every status callback; resolves with the first one. */
export function subscribe(channel: RealtimeChannel): Promise<{ status: Status; error?: Error; statuses: { status: Status; error?: Error }[] }> {
  const statuses: { status: Status; error?: Error }[] = [];
  return new Promise((resolve) => {
    channel.subscribe((status, error) => {
      statuses.push({ status: status as Status, error });
      if (statuses.length === 1) resolve({ status: status as Status, error, statuses });
    });
  });
}

/** Subscribes and fails the test unless the channel reaches SUBSCRIBED. */
export async function joined(channel: RealtimeChannel): Promise<RealtimeChannel> {
  const { status, error } = await subscribe(channel);
  if (status !== 'SUBSCRIBED') throw new Error(`expected SUBSCRIBED, got ${status}: ${error?.message}`);
  return channel;
}

export async function waitFor<T>(probe: () => T | undefined | false | null | Promise<T | undefined | false | null>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export type Frame = unknown[] | Record<string, unknown> | { binary: Buffer };

/** A raw Phoenix client: sends exactly what a test says and records every frame and the close. */
export class RawClient {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  private ref = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.frames.push({ binary: data });
      else this.frames.push(JSON.parse(data.toString()) as Frame);
    });
    ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString() }));
    ws.on('error', () => undefined);
  }

  static async connect(gw: TestGateway, key = gw.keys.anon, vsn = '2.0.0'): Promise<RawClient> {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${key}&vsn=${vsn}`, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new RawClient(ws);
  }

  nextRef(): string {
    return String(++this.ref);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  sendBinary(bytes: Buffer): void {
    this.ws.send(bytes, { binary: true });
  }

  /** Joins `realtime:<sub>` with the given config and waits for the reply; returns the join ref and reply. */
  async join(sub: string, config: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<{ joinRef: string; reply: unknown[] }> {
    const joinRef = this.nextRef();
    const topic = `realtime:${sub}`;
    this.send([joinRef, joinRef, topic, 'phx_join', { config: { broadcast: { ack: false, self: false }, presence: { key: '', enabled: false }, postgres_changes: [], private: false, ...config }, ...extra }]);
    const reply = await this.waitFrame((f) => Array.isArray(f) && f[1] === joinRef && f[3] === 'phx_reply', `join reply for ${topic}`);
    return { joinRef, reply: reply as unknown[] };
  }

  /** Waits for a frame (already received or future) matching `match`. */
  async waitFrame(match: (f: Frame) => boolean, what: string, timeoutMs = 5000): Promise<Frame> {
    return waitFor(() => this.frames.find(match), what, timeoutMs);
  }

  async waitClose(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    return waitFor(() => this.closed, 'socket close', timeoutMs);
  }

  close(): void {
    this.ws.close();
  }
}

/** Encodes a kind-3 user broadcast push exactly as realtime-js's serializer does. */
export function userBroadcastPush(joinRef: string, ref: string, topic: string, event: string, payload: Buffer, encoding: 0 | 1 = 1, metadata = ''): Buffer {
  const parts = [joinRef, ref, topic, event, metadata].map((s) => Buffer.from(s));
  return Buffer.concat([Buffer.from([3, ...parts.map((p) => p.length), encoding]), ...parts, payload]);
}

/** Opens a WebSocket upgrade and returns the HTTP status and body when it is refused. */
export async function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('open', () => {
      ws.close();
      reject(new Error('upgrade was accepted'));
    });
    ws.on('error', () => undefined);
  });
}
