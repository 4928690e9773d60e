// The content module: registry, progress publishing and the simulator, with their routes.
// Other modules (SSE streams, a job runner, the hybrid spike) reach the same instances
// through `contentOf(gateway)`, the in-process publishing API.
import type { Gateway } from '../server/gateway.js';
import { ContentProgress } from './progress.js';
import { ContentRegistry } from './registry.js';
import { registerContentRoutes } from './routes.js';
import { ContentSimulator } from './simulator.js';

export interface ContentServices {
  readonly progress: ContentProgress;
  readonly registry: ContentRegistry;
  readonly simulator: ContentSimulator;
}

const servicesByGateway = new WeakMap<Gateway, ContentServices>();

/** The gateway's content services; throws if the content module was not loaded. */
export function contentOf(gateway: Gateway): ContentServices {
  const services = servicesByGateway.get(gateway);
  if (!services) throw new Error('the content module is not registered on this gateway (see src/server/modules.ts)');
  return services;
}

export function registerContent(gateway: Gateway): void {
  const registry = new ContentRegistry(gateway.config, gateway.bus.shared ? gateway.bus.records : undefined);
  const progress = new ContentProgress(gateway.hub, registry);
  const simulator = new ContentSimulator(progress, gateway.log);
  servicesByGateway.set(gateway, { progress, registry, simulator });
  gateway.onSweep((now) => registry.sweep(now));
  gateway.onShutdown(() => simulator.stop());
  registerContentRoutes(gateway, progress, simulator);
}
