// The SSE module: progress streams, resume, heartbeats and the long-poll fallback.
// Needs the content items (ownership for authorization, latest state for resets) as the
// `contentItems` service, which the composition root (src/server/modules.ts) makes of the
// content module's registry: src/sse and src/content do not import each other.
import { CONTENT_TOPIC_PREFIX } from '../core/progress-topics.js';
import { defineModule } from '../server/services.js';
import { registerSseRoutes, type ContentItems } from './routes.js';
import { Delivery } from '../server/writer.js';
import type { StreamContext } from './stream.js';
import { StreamSharing } from './sharing.js';

declare module '../server/services.js' {
  interface Services {
    contentItems: ContentItems;
  }
}

export const sseModule = defineModule({
  name: 'sse',
  needs: ['config', 'hub', 'connections', 'metrics', 'router', 'auth', 'clientAddress', 'contentItems'],
  start(deps) {
    const { config, hub, metrics, contentItems: items } = deps;
    const ctx: StreamContext = {
      hub,
      connections: deps.connections,
      metrics,
      // SSE frames are small progress events: no allowance beyond the budget.
      delivery: new Delivery({ transport: 'sse', budgetBytes: config.slowConsumerBytes, allowanceBytes: 0, hub, metrics }),
      sharing: config.sseShareStreams === 'on' ? new StreamSharing(hub) : undefined,
      heartbeatMs: config.heartbeatMs,
      retryMs: config.retryMs,
      stateOf(topic) {
        return topic.startsWith(CONTENT_TOPIC_PREFIX) ? items.state(topic.slice(CONTENT_TOPIC_PREFIX.length)) : undefined;
      },
    };
    registerSseRoutes(deps, ctx, items);
  },
});
