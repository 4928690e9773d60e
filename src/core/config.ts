// Gateway configuration: one table of options, each with its CLI flag, environment
// variable, schema, default and help text. The CLI builds `--help` from this table and
// start-up validates every value against it, so a bad value stops the process with a
// message that names the flag or variable it came from.
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseCorsOrigins } from './origins.js';
import { parseJwksSource } from './jwt-keys.js';
import { parseTrustedProxies } from './trusted-proxies.js';
import { parseAllowedRoles } from './auth.js';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** A string option that `parse` must accept; what `parse` throws becomes the validation message. */
const parsedString = (parse: (value: string) => unknown) =>
  z.string().superRefine((value, ctx) => {
    try {
      parse(value);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
    }
  });

/** Durations are given in milliseconds as plain integers. */
const ms = (min: number, max: number) => int(min, max);

export const optionTable = {
  port: { flag: '--port <n>', env: 'PORT', schema: int(0, 65535), default: 4000, help: 'TCP port to listen on (0 picks a free port)' },
  host: { flag: '--host <addr>', env: 'FANOUT_HOST', schema: z.string().min(1), default: '127.0.0.1', help: 'address to bind (0.0.0.0 for every interface)' },
  dataDir: { flag: '--data-dir <path>', env: 'FANOUT_DATA_DIR', schema: z.string().min(1), default: '.fanout', help: 'directory for the development JWT secret and the embedded database' },
  jwtSecret: { flag: undefined, env: 'FANOUT_JWT_SECRET', schema: z.string().min(32, 'must be at least 32 characters').optional(), default: undefined, help: 'shared secret that signs keys (HS256) and verifies HS256/384/512 tokens; Supabase\'s JWT_SECRET (generated into the data dir when unset)' },
  jwtJwks: {
    flag: '--jwt-jwks <jwks>',
    env: 'FANOUT_JWT_JWKS',
    schema: z
      .string()
      .superRefine((value, ctx) => {
        try {
          parseJwksSource(value);
        } catch (err) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
        }
      })
      .optional(),
    default: undefined,
    help: 'public keys that verify RS/ES/EdDSA tokens by kid (and oct keys for HS tokens): a JWKS as inline JSON (Supabase\'s JWT_JWKS), a file, or an http(s) URL such as GoTrue\'s <supabase-url>/auth/v1/.well-known/jwks.json',
  },
  jwtJwksCooldownMs: { flag: '--jwt-jwks-cooldown-ms <ms>', env: 'FANOUT_JWT_JWKS_COOLDOWN_MS', schema: ms(0, 3600_000), default: 30_000, help: 'a token naming an unknown kid re-reads the JWKS at once, but at most once per this period' },
  jwtJwksRefreshMs: { flag: '--jwt-jwks-refresh-ms <ms>', env: 'FANOUT_JWT_JWKS_REFRESH_MS', schema: ms(1000, 7 * 24 * 3600_000), default: 600_000, help: 'how often a JWKS URL or file is read again (a key taken out of it stops verifying within this period)' },
  logLevel: { flag: '--log-level <level>', env: 'FANOUT_LOG_LEVEL', schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), default: 'info', help: 'log level' },
  historySize: { flag: '--history-size <n>', env: 'FANOUT_HISTORY_SIZE', schema: int(0, 1_000_000), default: 1000, help: 'messages kept per topic for resume' },
  historyTtlMs: { flag: '--history-ttl-ms <ms>', env: 'FANOUT_HISTORY_TTL_MS', schema: ms(0, 7 * 24 * 3600_000), default: 300_000, help: 'how long a message stays resumable' },
  heartbeatMs: { flag: '--heartbeat-ms <ms>', env: 'FANOUT_HEARTBEAT_MS', schema: ms(100, 3600_000), default: 15_000, help: 'SSE comment heartbeat interval' },
  retryMs: { flag: '--retry-ms <ms>', env: 'FANOUT_RETRY_MS', schema: ms(0, 3600_000), default: 2000, help: 'reconnect delay advertised to SSE clients (retry:)' },
  maxConnections: { flag: '--max-connections <n>', env: 'FANOUT_MAX_CONNECTIONS', schema: int(1, 10_000_000), default: 100_000, help: 'cap on open streaming connections (503 beyond it)' },
  maxConnectionsPerUser: { flag: '--max-connections-per-user <n>', env: 'FANOUT_MAX_CONNECTIONS_PER_USER', schema: int(1, 10_000_000), default: 100, help: 'cap on open streams and WebSockets per user: the `sub` of the token (for Realtime, of each join\'s token), 429 beyond it' },
  maxConnectionsPerAddress: { flag: '--max-connections-per-address <n>', env: 'FANOUT_MAX_CONNECTIONS_PER_ADDRESS', schema: int(1, 10_000_000), default: 1000, help: 'cap on open connections per client address for keys without a user (anon or service_role keys; a Realtime socket counts here until a join carries a user token), 429 beyond it' },
  trustedProxies: {
    flag: '--trusted-proxies <list>',
    env: 'FANOUT_TRUSTED_PROXIES',
    schema: parsedString(parseTrustedProxies),
    default: '',
    help: 'proxies whose X-Forwarded-For names the client address (comma-separated addresses or CIDRs, or loopback, linklocal, uniquelocal); empty: the socket\'s peer address is the client',
  },
  allowedRoles: {
    flag: '--allowed-roles <list>',
    env: 'FANOUT_ALLOWED_ROLES',
    schema: parsedString(parseAllowedRoles),
    default: 'anon,authenticated,service_role',
    help: 'database roles a JWT `role` claim may name (comma-separated); a token naming any other role is refused at authentication',
  },
  slowConsumerBytes: { flag: '--slow-consumer-bytes <n>', env: 'FANOUT_SLOW_CONSUMER_BYTES', schema: int(1024, 1 << 30), default: 1 << 20, help: 'unsent bytes a connection may hold before it is disconnected' },
  drainTimeoutMs: { flag: '--drain-timeout-ms <ms>', env: 'FANOUT_DRAIN_TIMEOUT_MS', schema: ms(0, 600_000), default: 10_000, help: 'on SIGTERM, how long to wait for connections to leave before exiting' },
  maxTopicsPerStream: { flag: '--max-topics-per-stream <n>', env: 'FANOUT_MAX_TOPICS_PER_STREAM', schema: int(1, 1000), default: 64, help: 'most topics one /v1/stream connection may subscribe to' },
  sseShareStreams: { flag: '--sse-share-streams <on|off>', env: 'FANOUT_SSE_SHARE_STREAMS', schema: z.enum(['on', 'off']), default: 'off', help: 'let streams of the same (user, content) share one hub subscription' },
  demoSession: { flag: '--demo-session <auto|on|off>', env: 'FANOUT_DEMO_SESSION', schema: z.enum(['auto', 'on', 'off']), default: 'auto', help: 'GET /demo/session hands out user keys for the demo page: auto = only to loopback clients while on the development secret; on = to anyone (any user can be impersonated)' },
  contentTtlMs: { flag: '--content-ttl-ms <ms>', env: 'FANOUT_CONTENT_TTL_MS', schema: ms(1000, 30 * 24 * 3600_000), default: 3600_000, help: 'how long a finished content item stays known (GET, streams) after its last event' },
  maxContentItems: { flag: '--max-content-items <n>', env: 'FANOUT_MAX_CONTENT_ITEMS', schema: int(1, 100_000_000), default: 1_000_000, help: 'cap on content items tracked at once (503 beyond it)' },
  maxBodyBytes: { flag: '--max-body-bytes <n>', env: 'FANOUT_MAX_BODY_BYTES', schema: int(1, 1 << 30), default: 1 << 20, help: 'largest accepted request body (413 beyond it)' },
  maxHeaderBytes: { flag: '--max-header-bytes <n>', env: 'FANOUT_MAX_HEADER_BYTES', schema: int(1024, 1 << 20), default: 16 * 1024, help: 'largest accepted request header block (431 beyond it)' },
  corsOrigins: {
    flag: '--cors-origins <list>',
    env: 'FANOUT_CORS_ORIGINS',
    schema: parsedString(parseCorsOrigins),
    default: '*',
    help: 'browser origins whose pages may call the HTTP APIs and streams: * (any), off, or exact origins, comma-separated (https://app.example.com,http://localhost:3000)',
  },
  tlsCert: { flag: '--tls-cert <path>', env: 'FANOUT_TLS_CERT', schema: z.string().min(1).optional(), default: undefined, help: 'PEM certificate: also serve HTTP/2 over TLS (needs --tls-key)' },
  tlsKey: { flag: '--tls-key <path>', env: 'FANOUT_TLS_KEY', schema: z.string().min(1).optional(), default: undefined, help: 'PEM private key for --tls-cert' },
  tlsPort: { flag: '--tls-port <n>', env: 'FANOUT_TLS_PORT', schema: int(0, 65535), default: 4443, help: 'port for HTTP/2 over TLS' },
  realtimeMaxChannelsPerClient: { flag: '--realtime-max-channels-per-client <n>', env: 'FANOUT_REALTIME_MAX_CHANNELS_PER_CLIENT', schema: int(1, 1_000_000), default: 100, help: 'Realtime channels one WebSocket may have joined at once (ChannelRateLimitReached beyond it)' },
  realtimeMaxJoinsPerSecond: { flag: '--realtime-max-joins-per-second <n>', env: 'FANOUT_REALTIME_MAX_JOINS_PER_SECOND', schema: int(1, 10_000_000), default: 1000, help: 'gateway-wide Realtime channel joins per second, a token bucket with a burst of one second\'s worth; sized to what the machine can take, so only many users together reach it (ClientJoinRateLimitReached beyond it)' },
  realtimeUserJoinsPerSecond: { flag: '--realtime-user-joins-per-second <n>', env: 'FANOUT_REALTIME_USER_JOINS_PER_SECOND', schema: int(1, 10_000_000), default: 20, help: 'Realtime joins per second one user (or one client address, for keys without a user) may make over all its sockets: a token bucket refilled at this rate' },
  realtimeUserJoinBurst: { flag: '--realtime-user-join-burst <n>', env: 'FANOUT_REALTIME_USER_JOIN_BURST', schema: int(1, 10_000_000), default: 200, help: 'joins one user may make at once before --realtime-user-joins-per-second applies' },
  realtimeSocketJoinsPerSecond: { flag: '--realtime-socket-joins-per-second <n>', env: 'FANOUT_REALTIME_SOCKET_JOINS_PER_SECOND', schema: int(1, 10_000_000), default: 10, help: 'Realtime joins per second one WebSocket may make: a token bucket whose burst is --realtime-max-channels-per-client plus one second\'s worth (an app may join all its channels at once)' },
  realtimeMaxEventsPerSecond: { flag: '--realtime-max-events-per-second <n>', env: 'FANOUT_REALTIME_MAX_EVENTS_PER_SECOND', schema: int(1, 10_000_000), default: 100, help: 'messages per second one WebSocket (or one REST caller) may send: a token bucket with burst --realtime-event-burst; a message beyond it is dropped and the socket\'s channels are shut down ("Too many messages per second")' },
  realtimeEventBurst: { flag: '--realtime-event-burst <n>', env: 'FANOUT_REALTIME_EVENT_BURST', schema: int(1, 10_000_000), default: 500, help: 'messages one WebSocket may send at once before --realtime-max-events-per-second applies' },
  realtimeUserEventsPerSecond: { flag: '--realtime-user-events-per-second <n>', env: 'FANOUT_REALTIME_USER_EVENTS_PER_SECOND', schema: int(1, 10_000_000), default: 500, help: 'messages per second one user (or one client address, for keys without a user) may send over all its WebSockets: a token bucket with burst --realtime-user-event-burst' },
  realtimeUserEventBurst: { flag: '--realtime-user-event-burst <n>', env: 'FANOUT_REALTIME_USER_EVENT_BURST', schema: int(1, 10_000_000), default: 2500, help: 'messages one user may send at once before --realtime-user-events-per-second applies' },
  realtimeMaxBindingsPerJoin: { flag: '--realtime-max-bindings-per-join <n>', env: 'FANOUT_REALTIME_MAX_BINDINGS_PER_JOIN', schema: int(1, 100_000), default: 100, help: 'postgres_changes bindings one channel join may carry (the join is refused beyond it)' },
  realtimeMaxPayloadKb: { flag: '--realtime-max-payload-kb <n>', env: 'FANOUT_REALTIME_MAX_PAYLOAD_KB', schema: int(1, 1_000_000), default: 3000, help: 'largest broadcast, presence or REST payload in KB of 1000 bytes' },
  realtimeMaxFrameBytes: { flag: '--realtime-max-frame-bytes <n>', env: 'FANOUT_REALTIME_MAX_FRAME_BYTES', schema: int(1024, 1 << 30), default: 5_000_000, help: 'largest WebSocket message accepted; a bigger one closes the socket with 1009' },
  realtimePresenceMaxCalls: { flag: '--realtime-presence-max-calls <n>', env: 'FANOUT_REALTIME_PRESENCE_MAX_CALLS', schema: int(1, 1_000_000), default: 5, help: 'presence track/untrack calls a channel may make per window ("Client presence rate limit exceeded" beyond it)' },
  realtimePresenceWindowMs: { flag: '--realtime-presence-window-ms <ms>', env: 'FANOUT_REALTIME_PRESENCE_WINDOW_MS', schema: ms(1, 3600_000), default: 30_000, help: 'window of --realtime-presence-max-calls' },
  realtimeIdleTimeoutMs: { flag: '--realtime-idle-timeout-ms <ms>', env: 'FANOUT_REALTIME_IDLE_TIMEOUT_MS', schema: ms(100, 3600_000), default: 60_000, help: 'a Realtime WebSocket that sends nothing (not even a heartbeat) for this long is closed' },
  realtimeConnectErrorBackoffMs: { flag: '--realtime-connect-error-backoff-ms <ms>', env: 'FANOUT_REALTIME_CONNECT_ERROR_BACKOFF_MS', schema: ms(0, 60_000), default: 2000, help: 'delay before refusing a Realtime WebSocket upgrade (slows reconnect storms, as Supabase does)' },
  realtimeChannelErrorBackoffMs: { flag: '--realtime-channel-error-backoff-ms <ms>', env: 'FANOUT_REALTIME_CHANNEL_ERROR_BACKOFF_MS', schema: ms(0, 60_000), default: 5000, help: 'delay before answering a refused channel join (slows rejoin storms, as Supabase does)' },
  realtimeReplicationReadyTimeoutMs: { flag: '--realtime-replication-ready-timeout-ms <ms>', env: 'FANOUT_REALTIME_REPLICATION_READY_TIMEOUT_MS', schema: ms(100, 600_000), default: 60_000, help: 'a channel joined with broadcast.replication_ready is closed if the change feed is not capturing within this long' },
  alerts: { flag: '--alerts <file>', env: 'FANOUT_ALERTS', schema: z.string().min(1).optional(), default: undefined, help: 'JSON file of alert rules (and an optional webhook) added to the built-in rules' },
  monitorIntervalMs: { flag: '--monitor-interval-ms <ms>', env: 'FANOUT_MONITOR_INTERVAL_MS', schema: ms(10, 60_000), default: 1000, help: 'how often the monitor samples metrics for alerts and the dashboard' },
  databaseUrl: { flag: '--database-url <url>', env: 'DATABASE_URL', schema: z.string().url().optional(), default: undefined, help: 'PostgreSQL URL for postgres_changes (embedded PGlite when unset)' },
  dbStart: { flag: '--db-start <when>', env: 'FANOUT_DB_START', schema: z.enum(['eager', 'lazy']), default: 'eager', help: 'open the database at start-up (eager) or at first use: a postgres_changes join, a private channel, the comments API (lazy)' },
  changesConsumer: { flag: '--changes-consumer <name>', env: 'FANOUT_CHANGES_CONSUMER', schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . or -'), default: 'default', help: 'name of this gateway\'s change-feed cursor (and, with WAL capture, of its replication slot fanout_<name>); gateways of one cluster share it, separate gateways sharing one database each need their own' },
  changesCapture: { flag: '--changes-capture <mode>', env: 'FANOUT_CHANGES_CAPTURE', schema: z.enum(['auto', 'wal', 'outbox']), default: 'auto', help: 'how PostgreSQL changes are captured: wal = read the write-ahead log through a logical replication slot (pgoutput; no trigger, no extra write on your tables; needs wal_level=logical and a role with REPLICATION), outbox = capture triggers writing realtime.fanout_changes (any server, and PGlite), auto = wal where the server allows it, else outbox (the start-up log says which and why)' },
  changesReplayMs: { flag: '--changes-replay-ms <ms>', env: 'FANOUT_CHANGES_REPLAY_MS', schema: ms(0, 3600_000), default: 30_000, help: 'after start-up, how long changes (including those committed while the gateway was down) are kept for subscribers that reconnect' },
  bus: { flag: '--bus <kind>', env: 'FANOUT_BUS', schema: z.enum(['memory', 'redis', 'nats']), default: 'memory', help: 'message bus between gateway processes' },
  redisUrl: { flag: '--redis-url <url>', env: 'REDIS_URL', schema: z.string().url(), default: 'redis://127.0.0.1:6379', help: 'Redis URL for --bus redis; redis+cluster://host:port[,host:port] for a Redis Cluster (seed nodes)' },
  natsUrl: { flag: '--nats-url <url>', env: 'NATS_URL', schema: z.string().min(1), default: 'nats://127.0.0.1:4222', help: 'NATS URL (or comma-separated URLs) for --bus nats' },
  busPrefix: { flag: '--bus-prefix <name>', env: 'FANOUT_BUS_PREFIX', schema: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 _ -'), default: 'fanout', help: 'prefix of every bus key, stream and subject: gateways with the same prefix form one cluster' },
  busLingerMs: { flag: '--bus-linger-ms <ms>', env: 'FANOUT_BUS_LINGER_MS', schema: ms(0, 3600_000), default: 5_000, help: 'how long a node stays subscribed to a topic on the bus after its last local subscriber left (so a reconnecting client causes no churn)' },
  idempotencyWindowMs: { flag: '--idempotency-window-ms <ms>', env: 'FANOUT_IDEMPOTENCY_WINDOW_MS', schema: ms(1000, 7 * 24 * 3600_000), default: 24 * 3600_000, help: 'how long an Idempotency-Key is remembered: a retry within it publishes nothing twice and gets the first answer' },
  workers: { flag: '--workers <n|auto>', env: 'FANOUT_WORKERS', schema: z.union([z.literal('auto'), int(1, 1024)]), default: 1, help: 'gateway processes on this host sharing one port (auto: one per CPU core); above 1 needs --bus redis or nats' },
  busNodeTimeoutMs: { flag: '--bus-node-timeout-ms <ms>', env: 'FANOUT_BUS_NODE_TIMEOUT_MS', schema: ms(300, 600_000), default: 15_000, help: 'a gateway whose bus heartbeat is older than this is dead: the others remove its presence members' },
} as const;

type OptionTable = typeof optionTable;
export type OptionName = keyof OptionTable;
export type GatewayConfig = { [K in OptionName]: z.output<OptionTable[K]['schema']> };

/** Raised when a flag or environment value fails validation; the message names the source. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Converts `--max-connections <n>` to the commander attribute name `maxConnections`. */
export function flagAttribute(flag: string): string {
  const long = flag.split(/[ ,]/)[0]!.replace(/^--/, '');
  return long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Resolves the configuration from CLI flags (highest precedence), then environment
 * variables, then defaults. Every problem is collected before failing so the user
 * can fix them all at once.
 */
export function loadConfig(
  flags: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<GatewayConfig> = {},
): GatewayConfig {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [name, opt] of Object.entries(optionTable) as [OptionName, OptionTable[OptionName]][]) {
    if (name in overrides) {
      out[name] = overrides[name];
      continue;
    }
    const flagValue = opt.flag ? flags[flagAttribute(opt.flag)] : undefined;
    const envValue = env[opt.env];
    let source: string;
    let raw: unknown;
    if (flagValue !== undefined) {
      source = opt.flag!.split(' ')[0]!;
      raw = flagValue;
    } else if (envValue !== undefined && envValue !== '') {
      source = `environment variable ${opt.env}`;
      raw = envValue;
    } else {
      out[name] = opt.default;
      continue;
    }
    const parsed = (opt.schema as z.ZodType).safeParse(raw);
    if (parsed.success) out[name] = parsed.data;
    else problems.push(`${source}=${JSON.stringify(raw)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  const cfg = out as GatewayConfig;
  if (!!cfg.tlsCert !== !!cfg.tlsKey) problems.push('--tls-cert and --tls-key must be given together');
  if (problems.length) throw new ConfigError(problems);
  cfg.dataDir = resolve(cfg.dataDir);
  return cfg;
}
