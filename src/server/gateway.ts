// The composition root: builds the shared services in order (config, logger, secret and
// auth, metrics, bus, hub, connection manager, router, readiness, idempotency), starts the
// feature modules of server/modules.ts with the services each declares (composition.ts),
// and owns the listening sockets, the shared sweep timer and shutdown.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig } from '../core/config.js';
import { Hub } from '../core/hub.js';
import { Auth, loadSecret, parseAllowedRoles, type SecretSource } from '../core/auth.js';
import { clientAddress, parseTrustedProxies } from '../core/trusted-proxies.js';
import { createLogger, scrubSecrets, type Logger } from '../core/log.js';
import { Router, nextRequestId } from './router.js';
import { Cors } from './cors.js';
import { AccessLog } from './access-log.js';
import { ConnectionManager } from './connections.js';
import { HttpError, errorBody, sendError } from './http-errors.js';
import { gatewayModules } from './modules.js';
import { checkWiring, startModules } from './composition.js';
import { GATEWAY_SERVICE_NAMES, type ClientAddressOf, type FeatureModule, type GatewayServices, type Lifecycle, type ServiceName, type Services, type UpgradeHandler } from './services.js';
import { GatewayMetrics } from './metrics.js';
import type { Bus } from '../bus/types.js';
import { BusMetrics, createBus, startBus } from '../bus/index.js';
import { registerBusStatus } from './bus-status.js';
import { ReadinessChecks } from './readiness.js';
import { IdempotencyKeys } from './idempotency.js';
import { jwksReadiness, startJwtKeySet } from './jwks.js';

export type { UpgradeHandler } from './services.js';

/** A running gateway: its own services, the feature modules' services by name, and its sockets. */
export interface Gateway extends Lifecycle {
  readonly config: GatewayConfig;
  readonly hub: Hub;
  readonly auth: Auth;
  readonly secret: SecretSource;
  readonly log: Logger;
  readonly router: Router;
  readonly connections: ConnectionManager;
  readonly metrics: GatewayMetrics;
  /** The bus every publish goes through: the in-process engine (`--bus memory`), Redis or NATS. */
  readonly bus: Bus;
  /** Idempotency-Key answers of publishing POSTs, shared by the nodes through the bus's records. */
  readonly idempotency: IdempotencyKeys;
  /** Named checks `/readyz` evaluates; a module owning an external dependency registers one (see readiness.ts). */
  readonly readiness: ReadinessChecks;
  readonly clientAddress: ClientAddressOf;
  /** A service a feature module provides (e.g. `content`, `databaseRuntime`); throws when no loaded module provides it. */
  service<K extends ServiceName>(name: K): Services[K];
  /** Whether a loaded module provides `name` (e.g. `databaseRuntime`, absent when the changes module is not loaded). */
  provides(name: ServiceName): boolean;
  /** `http://host:port` once listening. */
  readonly url: string;
  /** `https://host:port` when TLS is configured and listening. */
  readonly tlsUrl: string | undefined;
  listen(): Promise<void>;
  /** Stops accepting, drains connections (bounded by `drainTimeoutMs`) and closes everything. */
  close(): Promise<void>;
}

export interface GatewayOptions {
  logger?: Logger;
  /** Shared sweep period; heartbeats and idle checks are resolved to this granularity. */
  sweepMs?: number;
  /** Collect process metrics (CPU, RSS, event-loop lag); off for short-lived helpers. */
  processMetrics?: boolean;
  /** Feature modules to start, in order; defaults to all of them (server/modules.ts). */
  modules?: readonly FeatureModule[];
  /** A bus to use instead of the one `config.bus` names (tests: several gateways on one in-process MemoryCluster). */
  bus?: Bus;
}

export async function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const modules = options.modules ?? gatewayModules;
  // A module list that does not fit together is refused before anything is opened.
  checkWiring(modules, GATEWAY_SERVICE_NAMES);
  const log = options.logger ?? createLogger({ level: config.logLevel });
  const secret = loadSecret(config.jwtSecret, config.dataDir);
  if (secret.created) log.warn({ path: secret.path }, 'FANOUT_JWT_SECRET is not set: generated a development secret; set FANOUT_JWT_SECRET in production');
  else if (secret.origin === 'file') log.info({ path: secret.path }, 'using the development JWT secret from the data directory (FANOUT_JWT_SECRET is not set)');

  const bus = options.bus ?? createBus(config, log);
  const connections = new ConnectionManager(config);
  const metrics = new GatewayMetrics({ processMetrics: options.processMetrics, connections });
  const hub: Hub = new Hub({
    historySize: config.historySize,
    historyTtlMs: config.historyTtlMs,
    bus,
    lingerMs: config.busLingerMs,
    onProblem: (problem, topic, detail) => {
      busMetrics.replicaProblems.labels(problem).inc();
      log.warn({ problem, topic, detail }, 'hub replica problem');
    },
  });
  const busMetrics = new BusMetrics(metrics.registry, bus, hub);
  const jwks = await startJwtKeySet(config, log, metrics);
  const auth = new Auth(secret.secret, { keys: jwks, allowedRoles: parseAllowedRoles(config.allowedRoles) });
  const trustProxy = parseTrustedProxies(config.trustedProxies);
  const router = new Router(log);
  hub.observe(() => metrics.publishes.inc());
  const sweepers: ((now: number) => void)[] = [(now) => connections.tick(now), (now) => hub.sweep(now)];
  const shutdownHooks: (() => Promise<void> | void)[] = [];
  const upgrades = new Map<string, UpgradeHandler>();

  const accessLog = new AccessLog(log, metrics);
  const cors = new Cors(config.corsOrigins);

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const requestId = nextRequestId();
    accessLog.track(req, res, requestId);
    if (cors.handle(req, res)) return;
    if (!router.handle(req, res, requestId)) {
      sendError(res, new HttpError(404, 'not_found', `no route for ${req.method} ${scrubSecrets((req.url ?? '/').split('?')[0]!)}`));
    }
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    accessLog.upgrade(req, nextRequestId());
    const path = new URL(req.url ?? '/', 'http://gateway.invalid').pathname.replace(/\/+$/, '');
    const handler = upgrades.get(path);
    if (handler) return handler(req, socket, head);
    const body = errorBody('not_found', `no WebSocket endpoint at ${path}`);
    socket.end(`HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  };

  // Requests Node rejects before any route sees them (oversized headers, garbage) still get a JSON error.
  const onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const [status, code, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', `request headers exceed the limit of ${config.maxHeaderBytes} bytes`]
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'request_timeout', 'the request was not received in time']
          : [400, 'bad_request', `malformed HTTP request (${err.code ?? err.message})`];
    const body = errorBody(code, message);
    socket.end(`HTTP/1.1 ${status} ${code}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  };

  const http: Server = createServer({ maxHeaderSize: config.maxHeaderBytes }, onRequest);
  http.on('upgrade', onUpgrade);
  http.on('clientError', onClientError);
  // Streams live for hours; only the request head has to arrive promptly.
  http.requestTimeout = 0;
  http.headersTimeout = 30_000;
  http.keepAliveTimeout = 5_000;

  let https: Http2SecureServer | undefined;
  if (config.tlsCert && config.tlsKey) {
    // HTTP/2 lets a browser multiplex many EventSource streams over one connection.
    // The compatibility API hands us objects shaped like node:http's, which every route uses.
    https = createSecureServer(
      { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey), allowHTTP1: true, maxSessionMemory: 64 },
      onRequest as unknown as Parameters<typeof createSecureServer>[1],
    );
    https.on('upgrade', onUpgrade);
  }

  let url = '';
  let tlsUrl: string | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;

  let services: Partial<Services> = {};
  const lifecycle: Lifecycle = {
    onSweep: (fn) => void sweepers.push(fn),
    onShutdown: (fn) => void shutdownHooks.push(fn),
    onUpgrade: (path, handler) => void upgrades.set(path.replace(/\/+$/, ''), handler),
  };

  const gateway: Gateway = {
    ...lifecycle,
    config,
    hub,
    auth,
    secret,
    log,
    router,
    connections,
    metrics,
    bus,
    idempotency: new IdempotencyKeys(bus.records, config.idempotencyWindowMs),
    readiness: new ReadinessChecks(),
    clientAddress: (req) => clientAddress(req, trustProxy),
    service(name) {
      const service = services[name];
      if (service === undefined) throw new Error(`no module loaded on this gateway provides "${name}" (see src/server/modules.ts)`);
      return service;
    },
    provides: (name) => services[name] !== undefined,
    get url() {
      return url;
    },
    get tlsUrl() {
      return tlsUrl;
    },
    async listen() {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(config.port, config.host, () => resolve());
      });
      url = `http://${formatHost(config.host)}:${(http.address() as AddressInfo).port}`;
      if (https) {
        const server = https;
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(config.tlsPort, config.host, () => resolve());
        });
        tlsUrl = `https://${formatHost(config.host)}:${(server.address() as AddressInfo).port}`;
      }
      const sweepMs = options.sweepMs ?? 1000;
      sweepTimer = setInterval(() => {
        const now = Date.now();
        for (const fn of sweepers) {
          try {
            fn(now);
          } catch (err) {
            log.error({ err }, 'sweep task failed');
          }
        }
      }, sweepMs);
      sweepTimer.unref();
      log.info({ url, tlsUrl }, 'gateway listening');
    },
    close() {
      closing ??= (async () => {
        const started = Date.now();
        http.close();
        https?.close();
        const left = await connections.drain(config.drainTimeoutMs);
        if (left) log.warn({ left }, 'drain deadline passed with connections still open; closing them');
        http.closeAllConnections();
        if (sweepTimer) clearInterval(sweepTimer);
        for (const hook of shutdownHooks.reverse()) {
          try {
            await hook();
          } catch (err) {
            log.error({ err }, 'shutdown hook failed');
          }
        }
        log.info({ ms: Date.now() - started }, 'gateway stopped');
      })();
      return closing;
    },
  };

  if (jwks) {
    gateway.readiness.set('jwks', () => jwksReadiness(jwks));
    shutdownHooks.push(() => jwks.close());
  }
  await startBus({ bus, hub, log, metrics: busMetrics });
  registerBusStatus(bus, router, gateway.readiness);
  // Registered first, so it runs last: presence leaves and final publishes go out before the bus closes.
  shutdownHooks.push(() => bus.close());
  const own: GatewayServices = {
    config,
    log,
    secret,
    auth,
    metrics,
    bus,
    hub,
    connections,
    router,
    readiness: gateway.readiness,
    idempotency: gateway.idempotency,
    clientAddress: gateway.clientAddress,
    lifecycle,
    listening: gateway,
  };
  try {
    services = await startModules(modules, own);
  } catch (err) {
    // What the modules started so far (the database, the bus) is closed again.
    await gateway.close().catch(() => undefined);
    throw err;
  }
  return gateway;
}

function formatHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
