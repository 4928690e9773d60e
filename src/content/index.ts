// The content module: registry, progress publishing and the simulator, with their routes.
// It provides them as the `content` service (the in-process publishing API): the
// composition root hands the registry to SSE streams, and a job runner or a test reaches
// them through `gateway.service('content')`.
import { defineModule } from '../server/services.js';
import { ContentProgress } from './progress.js';
import { ContentRegistry } from './registry.js';
import { registerContentRoutes } from './routes.js';
import { ContentSimulator } from './simulator.js';

export interface ContentServices {
  readonly progress: ContentProgress;
  readonly registry: ContentRegistry;
  readonly simulator: ContentSimulator;
}

declare module '../server/services.js' {
  interface Services {
    content: ContentServices;
  }
}

export const contentModule = defineModule({
  name: 'content',
  needs: ['config', 'bus', 'hub', 'log', 'lifecycle', 'router', 'auth', 'metrics', 'idempotency'],
  provides: ['content'],
  start(deps) {
    const registry = new ContentRegistry(deps.config, deps.bus.shared ? deps.bus.records : undefined);
    const progress = new ContentProgress(deps.hub, registry);
    const simulator = new ContentSimulator(progress, deps.log);
    deps.lifecycle.onSweep((now) => registry.sweep(now));
    deps.lifecycle.onShutdown(() => simulator.stop());
    registerContentRoutes(deps, progress, simulator);
    return { content: { progress, registry, simulator } };
  },
});
