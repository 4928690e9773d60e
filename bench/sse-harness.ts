// Shared by the SSE bench and the leak test: control of a server child process
// (bench/sse-server-process.ts) and a lean opener of many raw SSE streams.
import { fork, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { MemoryReport, ServerCommand, ServerReply } from './sse-server-process.js';

const root = fileURLToPath(new URL('..', import.meta.url));

export interface ServerProcess {
  url: string;
  path: string;
  token: string;
  pid: number;
  request<T extends ServerReply['type']>(cmd: ServerCommand, expect: T): Promise<Extract<ServerReply, { type: T }>>;
  memory(): Promise<MemoryReport>;
  stop(): Promise<void>;
}

/**
 * Forks a server under test (`gateway` or `bare`) with --expose-gc and waits until it
 * listens. `env` adds gateway settings (`FANOUT_BUS=redis`, ... for a cluster node).
 */
export async function startServerProcess(mode: 'gateway' | 'bare', env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const child: ChildProcess = fork(`${root}/bin/run-ts.js`, [`${root}/bench/sse-server-process.ts`, mode], {
    cwd: root,
    env: { ...process.env, ...env },
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting: { type: string; resolve: (reply: ServerReply) => void }[] = [];
  child.on('message', (reply: ServerReply) => {
    const i = waiting.findIndex((w) => w.type === reply.type);
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(reply);
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const next = <T extends ServerReply['type']>(type: T): Promise<Extract<ServerReply, { type: T }>> =>
    new Promise((resolve, reject) => {
      waiting.push({ type, resolve: resolve as (r: ServerReply) => void });
      void exited.then(() => reject(new Error(`server process (${mode}) exited while waiting for ${type}`)));
    });
  const ready = await next('ready');
  const request: ServerProcess['request'] = (cmd, expect) => {
    const reply = next(expect);
    child.send(cmd);
    return reply;
  };
  return {
    ...ready,
    pid: child.pid!,
    request,
    memory: () => request({ cmd: 'memory' }, 'memory'),
    async stop() {
      if (child.exitCode !== null) return;
      child.send({ cmd: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface OpenOptions {
  url: string;
  path: string;
  token: string;
  count: number;
  /** Source address (127.0.0.x), to spread ephemeral ports over several addresses. */
  localAddress?: string;
  /** Connections being set up at once (keeps the listen backlog from overflowing). */
  concurrency?: number;
  /** Called for every chunk a stream receives after its response head. */
  onData?: (chunk: Buffer) => void;
  /** Give up on a stream that has not answered within this many ms. */
  timeoutMs?: number;
}

export interface OpenResult {
  sockets: Socket[];
  failed: number;
  firstError?: string;
}

/**
 * Opens `count` SSE streams over raw TCP sockets (the least client memory and CPU per
 * stream) and resolves once each has its `200` response head, or has failed.
 */
export async function openRawStreams(opts: OpenOptions): Promise<OpenResult> {
  const { hostname, port } = new URL(opts.url);
  const head = Buffer.from(`GET ${opts.path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${opts.token}\r\nAccept: text/event-stream\r\n\r\n`);
  const result: OpenResult = { sockets: [], failed: 0 };
  let next = 0;
  const openOne = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = connect({ host: hostname, port: Number(port), localAddress: opts.localAddress });
      let settled = false;
      const fail = (why: string): void => {
        if (settled) return;
        settled = true;
        result.failed++;
        result.firstError ??= why;
        socket.destroy();
        resolve();
      };
      const timer = setTimeout(() => fail('timed out'), opts.timeoutMs ?? 30_000);
      socket.once('connect', () => socket.write(head));
      socket.on('error', (err) => fail(err.message));
      socket.once('data', (chunk: Buffer) => {
        clearTimeout(timer);
        if (chunk.subarray(0, 12).toString() !== 'HTTP/1.1 200') return fail(chunk.toString('utf8', 0, 200));
        settled = true;
        result.sockets.push(socket);
        if (opts.onData) {
          opts.onData(chunk);
          socket.on('data', opts.onData);
        }
        resolve();
      });
    });
  const worker = async (): Promise<void> => {
    while (next < opts.count) {
      next++;
      await openOne();
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 200, opts.count) }, worker));
  return result;
}

/** Polls `check` until it is true or `timeoutMs` passes; returns whether it became true. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return check();
}
