// The system under test: a Fanout gateway, a Supabase project, or any SSE URL. This
// module knows each one's paths, and enforces the safety rule: load, soak and fault
// runs go to loopback addresses only, unless the user explicitly allows a remote target
// (a real Supabase project, say) — and fault injection never touches a remote target.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export type TargetKind = 'fanout' | 'supabase' | 'sse-url';

export interface Target {
  kind: TargetKind;
  /** Base URL (http/https), without a trailing slash. For `sse-url`, the stream URL itself. */
  url: string;
  /** Key that may publish (service_role); Fanout only. */
  serviceKey?: string;
  /** Project key clients connect with (anon), or a user JWT. */
  anonKey?: string;
  /** Local process id of the server, for /proc sampling. */
  pid?: number;
  /** Prometheus endpoint of the server, if it has one. */
  metricsUrl?: string;
}

export class TargetRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetRefusedError';
  }
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1' || host.startsWith('::ffff:127.');
  return false;
}

/**
 * Refuses a non-loopback target unless `allowRemote` is set, naming the flag; refuses
 * fault injection against any non-loopback target outright.
 */
export function checkTarget(url: string, opts: { allowRemote: boolean; faults?: boolean }): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TargetRefusedError(`--target ${JSON.stringify(url)} is not a URL (expected e.g. http://127.0.0.1:4000)`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(parsed.protocol)) throw new TargetRefusedError(`--target must be http(s) or ws(s), not ${parsed.protocol}`);
  const loopback = isLoopbackHost(parsed.hostname);
  if (!loopback && opts.faults) throw new TargetRefusedError(`fault injection is only run against loopback targets; ${parsed.host} is remote`);
  if (!loopback && !opts.allowRemote)
    throw new TargetRefusedError(
      `refusing to load-test ${parsed.host}: load runs go to loopback addresses (127.0.0.0/8, ::1) only. ` +
        'If this is a system you are allowed to test (e.g. your own Supabase project), pass --allow-remote.',
    );
  return parsed;
}

/** `localhost` may resolve to ::1; workers bind 127.0.0.x source addresses, so connect to 127.0.0.1 instead. */
export function normalizeLoopback(url: string): string {
  const u = new URL(url);
  if (u.hostname === 'localhost') u.hostname = '127.0.0.1';
  return u.toString().replace(/\/$/, '');
}

/**
 * Sockets per source address. A socket bound to an explicit address (localAddress) takes
 * its port from the half of the ephemeral range Linux keeps for bind(), ~14,000 here, and
 * the search for a free one slows sharply as that half fills up — with the previous runs'
 * TIME_WAIT sockets (60 s) counted in. Measured on this machine: 1,000 connects cost the
 * event loop ~60 ms up to ~6,000 sockets on one address and ~1.4 s beyond (bind() runs
 * synchronously). Staying far below that keeps bind() instant.
 */
export const SOCKETS_PER_SOURCE_ADDRESS = 2000;

/** True when connections to this target can leave from many 127.0.0.x addresses (an IPv4 loopback target). */
export function spreadsSourceAddresses(targetUrl: string): boolean {
  const host = new URL(targetUrl).hostname;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** Loopback source addresses 127.0.0.2 … 127.0.0.251 handed out in rotation. */
const ADDRESS_POOL = 250;
// A random start, so separate `fanout load` invocations in a row do not begin on the same address.
let nextAddress = Math.floor(Math.random() * ADDRESS_POOL);

/**
 * Source addresses for every worker of one run: enough 127.0.0.x per worker for
 * `perWorkerSockets`, taken from a rotating pool so consecutive runs do not reuse the
 * addresses whose ports the last run left in TIME_WAIT. Null for non-IPv4-loopback targets.
 */
export function allocateSourceAddresses(targetUrl: string, workers: number, perWorkerSockets: number): string[][] | null {
  if (!spreadsSourceAddresses(targetUrl)) return null;
  const per = Math.max(1, Math.ceil(perWorkerSockets / SOCKETS_PER_SOURCE_ADDRESS));
  return Array.from({ length: workers }, () => Array.from({ length: per }, () => `127.0.0.${2 + (nextAddress++ % ADDRESS_POOL)}`));
}

export function realtimeSocketUrl(target: Target): string {
  const u = new URL(target.url);
  u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:';
  u.pathname = '/realtime/v1/websocket';
  u.search = '';
  u.searchParams.set('apikey', target.anonKey ?? '');
  u.searchParams.set('vsn', '2.0.0');
  return u.toString();
}

export type SsePathMode = 'user' | 'content' | 'topic';

/** Subscribe URL of stream `contentId` (owned by `userId`) for connection `connectionId`. */
export function sseStreamUrl(target: Target, mode: SsePathMode, contentId: string, userId: string, connectionId: number): string {
  if (target.kind === 'sse-url') return target.url;
  const base = target.url;
  switch (mode) {
    case 'user':
      return `${base}/api/content/progress?connectionId=${connectionId}&userId=${encodeURIComponent(userId)}`;
    case 'content':
      return `${base}/api/content/${encodeURIComponent(contentId)}/progress`;
    case 'topic':
      return `${base}/v1/stream?topic=${encodeURIComponent(`content:${contentId}`)}`;
  }
}

/** How comment inserts reach the database: Fanout's comments API, or PostgREST on a Supabase project. */
export function commentInsertRequest(target: Target, project: string, userId: string, body: string): { url: string; headers: Record<string, string>; body: string } {
  const key = target.serviceKey ?? target.anonKey ?? '';
  if (target.kind === 'supabase') {
    return {
      url: `${target.url}/rest/v1/project_comments`,
      headers: { apikey: target.anonKey ?? key, authorization: `Bearer ${key}`, 'content-type': 'application/json', prefer: 'return=minimal' },
      body: JSON.stringify({ project_id: project, user_id: userId, body }),
    };
  }
  return {
    url: `${target.url}/api/projects/${encodeURIComponent(project)}/comments`,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ body, user_id: userId }),
  };
}

/** The hub topic whose `seq` a subscriber of stream (contentId, userId) sees, per path mode. */
export function sseTopic(mode: SsePathMode, contentId: string, userId: string): string {
  return mode === 'user' ? `user:${userId}` : `content:${contentId}`;
}

/**
 * Registers `count` content items on a Fanout gateway (no simulated events: the load
 * tester publishes), each owned by its own user so a user's feed carries exactly one
 * item's events and its sequence numbers match the item's.
 */
export async function createFanoutStreams(target: Target, count: number, runId: string): Promise<{ id: string; userId: string }[]> {
  const out: { id: string; userId: string }[] = [];
  const create = async (i: number): Promise<void> => {
    const id = `${runId}-c${i}`;
    const userId = `${runId}-u${i}`;
    const res = await fetch(`${target.url}/api/content`, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.serviceKey ?? ''}`, 'content-type': 'application/json' },
      body: JSON.stringify({ simulate: false, userId, contentId: id }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (res.status === 401 || res.status === 403) throw new Error(`the target refused the service_role key (POST /api/content answered ${res.status}): give the gateway's key with --service-key (see \`fanout keys\`)`);
    if (res.status !== 201) throw new Error(`creating content ${id} on ${target.url} failed: ${res.status} ${text.slice(0, 300)}`);
    out[i] = { id, userId };
  };
  for (let i = 0; i < count; i += 50) await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, k) => create(i + k)));
  return out;
}

/** `--server-pid` names a process that is not the target (exit 2: bad usage). */
export class ServerPidMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServerPidMismatchError';
  }
}

/** The parent pid of a local process, from /proc/<pid>/stat; undefined when it cannot be read. */
export function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as { code?: string }).code === 'EPERM';
  }
}

/**
 * Checks before a run that the target answers (a refused connection is a set-up failure,
 * not a threshold failure) and, when `--server-pid` is given, that it names the target:
 * a Fanout gateway reports its pid on /healthz, which must be that pid or a child of it
 * (`fanout serve --workers N` answers from a worker process). Sampling the wrong process
 * would put another program's CPU and memory beside the gateway's figures.
 */
export async function probeTarget(target: Target, timeoutMs = 5000): Promise<{ healthPid?: number }> {
  const probeUrl = target.kind === 'fanout' ? `${target.url}/healthz` : target.url;
  let healthPid: number | undefined;
  try {
    const res = await fetch(probeUrl, { signal: AbortSignal.timeout(timeoutMs), headers: target.kind === 'sse-url' ? { accept: 'text/event-stream' } : {} });
    if (target.kind === 'fanout') {
      const body = (await res.json().catch(() => undefined)) as { pid?: unknown } | undefined;
      if (typeof body?.pid === 'number') healthPid = body.pid;
    } else {
      // An SSE URL answers with a stream that never ends: the headers are all the probe needs.
      await res.body?.cancel();
    }
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = (err as { name?: string }).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause?.code ?? cause?.message ?? (err as Error).message);
    throw new Error(`cannot reach the target ${probeUrl}: ${why}`, { cause: err });
  }
  if (target.pid !== undefined) {
    if (!processExists(target.pid)) throw new ServerPidMismatchError(`--server-pid ${target.pid}: no such process on this machine`);
    if (healthPid !== undefined && healthPid !== target.pid && parentPid(healthPid) !== target.pid) {
      throw new ServerPidMismatchError(`--server-pid ${target.pid} is not the target: ${target.url}/healthz reports pid ${healthPid} (give --server-pid ${healthPid}, or leave it out)`);
    }
  }
  return { healthPid };
}
