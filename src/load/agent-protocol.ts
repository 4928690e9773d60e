// The wire between a coordinator (`fanout load … --agents`) and a remote generator
// (`fanout load agent --listen`): newline-delimited JSON over one TCP connection.
//
//   agent        → coordinator  {type:"challenge", nonce, version}
//   coordinator  → agent        {type:"auth", mac: HMAC(token, "coordinator:" + nonce), nonce: <its own>}
//   agent        → coordinator  {type:"welcome", mac: HMAC(token, "agent:" + that nonce), workers, cpus, host}
//                               or {type:"refused", reason} and the agent closes
//   then
//   coordinator  → agent        {type:"to", worker, msg} | {type:"all", msg} | {type:"ping", id}
//   agent        → coordinator  {type:"from", msg} | {type:"pong", id, now} | {type:"lost", reason}
//
// Both sides prove they hold the shared token without sending it (HMAC-SHA256 over the
// other side's fresh nonce), so a token is not exposed to whoever listens on the network
// and a stray process cannot pose as an agent. `msg` is exactly what a local worker process
// receives or sends over its IPC channel (plan.ts): an agent is a remote pool of workers.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { CoordinatorMessage, WorkerMessage } from './plan.js';

/** 2: the roll call (roll-call.ts) — a version-1 agent's workers would never answer it. */
export const AGENT_PROTOCOL_VERSION = 2;

/** A plan for 18,000 connections is a few MB of JSON; anything far beyond is not a coordinator talking. */
export const MAX_LINE_BYTES = 256 * 1024 * 1024;

export type AgentHello =
  | { type: 'challenge'; nonce: string; version: number }
  | { type: 'welcome'; mac: string; workers: number; cpus: number; host: string }
  | { type: 'refused'; reason: string };

export type ToAgent = { type: 'auth'; mac: string; nonce: string } | { type: 'to'; worker: number; msg: CoordinatorMessage } | { type: 'all'; msg: CoordinatorMessage } | { type: 'ping'; id: number };

export type FromAgent = AgentHello | { type: 'from'; msg: WorkerMessage } | { type: 'pong'; id: number; now: number } | { type: 'lost'; reason: string };

export function nonce(): string {
  return randomBytes(24).toString('base64url');
}

/** Proof that the sender holds `token`, bound to the receiver's nonce and to the sender's role. */
export function proof(token: string, role: 'coordinator' | 'agent', peerNonce: string): string {
  return createHmac('sha256', token).update(`fanout-load-agent:${role}:${peerNonce}`).digest('base64url');
}

export function verifyProof(token: string, role: 'coordinator' | 'agent', peerNonce: string, mac: unknown): boolean {
  if (typeof mac !== 'string') return false;
  const expected = Buffer.from(proof(token, role, peerNonce));
  const got = Buffer.from(mac);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** Writes one message as a line. */
export function writeLine(socket: Socket, msg: ToAgent | FromAgent): void {
  if (!socket.destroyed) socket.write(JSON.stringify(msg) + '\n');
}

/**
 * Splits a socket's bytes into JSON lines and hands each parsed object to `onMessage`. A
 * line that is not JSON or exceeds MAX_LINE_BYTES ends the connection through `onError`.
 */
export function readLines(socket: Socket, onMessage: (msg: unknown) => void, onError: (why: string) => void): void {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  socket.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, nl));
      const line = Buffer.concat(pending).toString('utf8');
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
      if (!line) continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        onError(`a line that is not JSON (${JSON.stringify(line.slice(0, 80))})`);
        return;
      }
      onMessage(msg);
      if (socket.destroyed) return;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      if (pendingBytes > MAX_LINE_BYTES) onError(`a line longer than ${MAX_LINE_BYTES} bytes`);
    }
  });
}

/** `host:port` → its parts; throws a message naming the bad value. */
export function parseHostPort(value: string, what: string, opts: { anyPort?: boolean } = {}): { host: string; port: number } {
  const m = /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !((opts.anyPort ? port >= 0 : port > 0) && port < 65536)) throw new Error(`${what} ${JSON.stringify(value)} is not host:port (e.g. 127.0.0.2:7100)`);
  return { host: m[1]!, port };
}
