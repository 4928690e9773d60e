// The shared services of one gateway, by name, and the shape of a feature module.
//
// The gateway builds its own services (below) in a fixed order; each feature module states
// which services it needs and which it provides, and receives a dependency object holding
// exactly what it asked for (see composition.ts, which checks the wiring before any module
// starts). A module that provides a service adds its name and type to `Services` by
// declaration merging in its own file:
//
//   declare module '../server/services.js' {
//     interface Services { content: ContentServices }
//   }
//
// so this file, and the Gateway type, import no feature module (no type-level cycle).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { GatewayConfig } from '../core/config.js';
import type { Hub } from '../core/hub.js';
import type { Auth, SecretSource } from '../core/auth.js';
import type { Logger } from '../core/log.js';
import type { Bus } from '../bus/types.js';
import type { Router } from './router.js';
import type { ConnectionManager } from './connections.js';
import type { GatewayMetrics } from './metrics.js';
import type { ReadinessChecks } from './readiness.js';
import type { IdempotencyKeys } from './idempotency.js';

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Hooks into the gateway's life: the shared sweep, shutdown and WebSocket upgrades. */
export interface Lifecycle {
  /** Runs `fn` from the shared sweep (every `sweepMs`), never from per-connection timers. */
  onSweep(fn: (now: number) => void): void;
  /** Runs `fn` during shutdown, after connections drained and before the process may exit. */
  onShutdown(fn: () => Promise<void> | void): void;
  /** Handles WebSocket (or other) upgrades on an exact path. */
  onUpgrade(path: string, handler: UpgradeHandler): void;
}

/** Where the gateway listens, known once `listen()` returned (empty before). */
export interface ListeningAddress {
  /** `http://host:port`. */
  readonly url: string;
  /** `https://host:port` when TLS is configured. */
  readonly tlsUrl: string | undefined;
}

/** The client's address: the peer, or what a trusted proxy (`--trusted-proxies`) put in X-Forwarded-For. */
export type ClientAddressOf = (req: IncomingMessage) => string;

/** Every service a module may ask for. Feature modules add theirs by declaration merging (see the header). */
export interface Services {
  config: GatewayConfig;
  log: Logger;
  secret: SecretSource;
  auth: Auth;
  metrics: GatewayMetrics;
  /** The bus every publish goes through: the in-process engine (`--bus memory`), Redis or NATS. */
  bus: Bus;
  hub: Hub;
  connections: ConnectionManager;
  router: Router;
  /** Named checks `/readyz` evaluates; a module owning an external dependency registers one. */
  readiness: ReadinessChecks;
  /** Idempotency-Key answers of publishing POSTs, shared by the nodes through the bus's records. */
  idempotency: IdempotencyKeys;
  clientAddress: ClientAddressOf;
  lifecycle: Lifecycle;
  listening: ListeningAddress;
}

export type ServiceName = keyof Services;

/** The services the gateway builds itself, before any feature module starts. */
export const GATEWAY_SERVICE_NAMES = ['config', 'log', 'secret', 'auth', 'metrics', 'bus', 'hub', 'connections', 'router', 'readiness', 'idempotency', 'clientAddress', 'lifecycle', 'listening'] as const;
export type GatewayServices = Pick<Services, (typeof GATEWAY_SERVICE_NAMES)[number]>;

/** What `start` returns: the provided services, or nothing for a module that provides none. */
type Provided<P extends ServiceName> = [P] extends [never] ? void : Pick<Services, P>;

/**
 * A feature module as written: `needs` must be there before it starts (a missing one fails
 * start-up), `uses` are taken when a module listed earlier provides them (else absent),
 * and `provides` are what its `start` returns for the modules after it.
 */
export interface FeatureModuleDefinition<N extends ServiceName, U extends ServiceName, P extends ServiceName> {
  readonly name: string;
  readonly needs: readonly N[];
  readonly uses?: readonly U[];
  readonly provides?: readonly P[];
  start(deps: Pick<Services, N> & Partial<Pick<Services, U>>): NoInfer<Provided<P> | Promise<Provided<P>>>;
}

/** A feature module as the composition root sees it: names and an untyped start. */
export interface FeatureModule {
  readonly name: string;
  readonly needs: readonly ServiceName[];
  readonly uses: readonly ServiceName[];
  readonly provides: readonly ServiceName[];
  start(deps: Partial<Services>): Promise<Partial<Services> | void>;
}

/** Declares a feature module; its `start` is type-checked against exactly the services it names. */
export function defineModule<const N extends ServiceName, const U extends ServiceName = never, const P extends ServiceName = never>(
  definition: FeatureModuleDefinition<N, U, P>,
): FeatureModule {
  return {
    name: definition.name,
    needs: definition.needs,
    uses: definition.uses ?? [],
    provides: definition.provides ?? [],
    // The composition root hands over exactly `needs` (all present) and what it has of `uses`.
    start: async (deps) => (await definition.start(deps as Pick<Services, N> & Partial<Pick<Services, U>>)) as Partial<Services> | void,
  };
}
