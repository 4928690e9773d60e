// The Realtime module: the WebSocket endpoint `/realtime/v1/websocket` (Phoenix
// serializers 1.0.0 and 2.0.0) and the REST broadcast endpoints, wired into the gateway's
// upgrade dispatch, connection manager, shared sweep and shutdown.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { AuthError, authFailureMessage, type Claims } from '../core/auth.js';
import { defineModule } from '../server/services.js';
import { httpErrorOf } from '../server/http-errors.js';
import { backoff, createRealtimeContext, joinLimitReached, type RealtimeContext, type RealtimeDeps } from './context.js';
import { addressIdentity, userIdentity } from '../server/connections.js';
import type { Vsn } from './codec.js';
import { registerBroadcastRoutes } from './rest.js';
import { RealtimeSocket } from './socket.js';

export const WEBSOCKET_PATH = '/realtime/v1/websocket';

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** Phoenix picks the serializer from `vsn` (default 1.0.0): `~> 1.0.0` or `~> 2.0.0`. */
function serializerFor(vsn: string | null): Vsn | undefined {
  if (vsn === null || /^1\.0(\.\d+)?$/.test(vsn)) return '1.0.0';
  if (/^2\.0(\.\d+)?$/.test(vsn)) return '2.0.0';
  return undefined;
}

/** A refused upgrade, answered as the real server does: a status and `{"error": "<msg>"}`. */
class UpgradeRefused {
  constructor(
    readonly status: number,
    readonly message: string,
    readonly kind: string,
    readonly headers: Record<string, string> = {},
  ) {}
}

function refuse(socket: Duplex, refusal: UpgradeRefused): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: refusal.message });
  const extra = Object.entries(refusal.headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`,
  );
}

/** The connect checks of the real server's `UserSocket.connect/3` (reference §1.1). */
async function admit(ctx: RealtimeContext, deps: RealtimeDeps, req: IncomingMessage, url: URL): Promise<{ vsn: Vsn; token: string; userKey: string }> {
  const vsn = serializerFor(url.searchParams.get('vsn'));
  if (!vsn) throw new UpgradeRefused(403, `Unsupported serializer version vsn=${url.searchParams.get('vsn')}: use 1.0.0 or 2.0.0`, 'bad_request');
  const header = req.headers['x-api-key'];
  // A copy of its own: a substring of the request URL would keep the whole URL alive for as
  // long as the socket stays open (~250 bytes per socket).
  const token = Buffer.from((typeof header === 'string' && header) || url.searchParams.get('apikey') || '', 'latin1').toString('latin1');
  let claims: Claims;
  try {
    claims = await deps.auth.verify(token);
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    // Supabase's upgrade errors: its fixed wording, with the kid for a signer error and the role for a refused one.
    throw new UpgradeRefused(401, err.kind === 'signer' || err.kind === 'role' ? err.message : authFailureMessage[err.kind], 'auth');
  }
  // Who the socket is until a join names a user: the key's user, or the client's address.
  const userKey = claims.sub !== undefined ? userIdentity(claims.sub) : addressIdentity(deps.clientAddress(req));
  const joinLimit = joinLimitReached(ctx, userKey);
  if (joinLimit) throw new UpgradeRefused(429, `Too many joins per second (${joinLimit})`, 'rate_limit', { 'retry-after': '1' });
  try {
    deps.connections.admit(userKey);
  } catch (err) {
    const answer = httpErrorOf(err);
    if (!answer) throw err;
    const message = answer.status === 429 ? `Too many connected users (${answer.message})` : answer.message;
    throw new UpgradeRefused(answer.status, message, answer.code, answer.headers);
  }
  return { vsn, token, userKey };
}

export const realtimeModule = defineModule({
  name: 'realtime',
  needs: ['config', 'log', 'hub', 'bus', 'auth', 'metrics', 'connections', 'clientAddress', 'router', 'idempotency', 'lifecycle'],
  uses: ['database'],
  start: (services) => startRealtime(realtimeDepsOf(services)),
});

/** Realtime's dependencies from the gateway's services (the one place that knows the service names). */
function realtimeDepsOf(services: Omit<RealtimeDeps, 'database'> & { database?: RealtimeDeps['database'] }): RealtimeDeps {
  const { config, log, hub, bus, auth, metrics, connections, clientAddress, router, idempotency, lifecycle, database } = services;
  return { config, log, hub, bus, auth, metrics, connections, clientAddress, router, idempotency, lifecycle, database };
}

/** Starts the Realtime module with exactly its dependencies. */
async function startRealtime(deps: RealtimeDeps): Promise<void> {
  const ctx = createRealtimeContext(deps);
  const { connections } = deps;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: deps.config.realtimeMaxFrameBytes });

  const accept = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    // The client may go away while the token is checked (or during the back-off sleep).
    const onError = (): void => void socket.destroy();
    socket.on('error', onError);
    let admitted: Awaited<ReturnType<typeof admit>>;
    try {
      admitted = await admit(ctx, deps, req, url);
    } catch (err) {
      const refusal = err instanceof UpgradeRefused ? err : new UpgradeRefused(500, 'Error connecting to Realtime', 'internal');
      if (!(err instanceof UpgradeRefused)) ctx.log.error({ err }, 'realtime connect failed');
      ctx.metrics.connectionRejected(refusal.kind);
      ctx.error(refusal.kind);
      // Supabase sleeps before answering a refused connect, which slows reconnect storms.
      await backoff(ctx.limits.connectErrorBackoffMs);
      refuse(socket, refusal);
      return;
    }
    socket.off('error', onError);
    if (socket.destroyed) return;
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new RealtimeSocket(ctx, ws, socket, admitted.vsn, admitted.token, admitted.userKey);
      connections.add(conn);
      ctx.metrics.connectionOpened();
    });
  };

  deps.lifecycle.onUpgrade(WEBSOCKET_PATH, (req, socket, head) => {
    accept(req, socket, head).catch((err: unknown) => {
      ctx.log.error({ err }, 'realtime upgrade failed');
      socket.destroy();
    });
  });
  registerBroadcastRoutes(ctx, deps);
  deps.lifecycle.onSweep((now) => ctx.identities.sweep(now, (identity) => connections.countForUser(identity) > 0));
  if (deps.bus.shared) {
    const bus = deps.bus;
    // Heartbeat at once, so this node's members count as alive from its first join.
    await ctx.presence.heartbeat(bus).catch((err: unknown) => ctx.log.warn({ err }, 'first presence heartbeat failed; retrying from the sweep'));
    deps.lifecycle.onSweep((now) => ctx.presence.tick(now, deps.config.busNodeTimeoutMs));
  }
  deps.lifecycle.onShutdown(() => new Promise<void>((resolve) => wss.close(() => resolve())));
}
