// The SSE module: progress streams, resume, heartbeats and the long-poll fallback.
// Needs the content items (ownership for authorization, latest state for resets), which
// the gateway hands over from the content module (src/server/modules.ts loads it first).
import { CONTENT_TOPIC_PREFIX } from '../core/progress-topics.js';
import type { Gateway } from '../server/gateway.js';
import { registerSseRoutes, type ContentItems } from './routes.js';
import { Delivery } from '../server/writer.js';
import type { StreamContext } from './stream.js';
import { StreamSharing } from './sharing.js';

export function registerSse(gateway: Gateway, items: ContentItems): void {
  const { config } = gateway;
  const ctx: StreamContext = {
    hub: gateway.hub,
    connections: gateway.connections,
    metrics: gateway.metrics,
    // SSE frames are small progress events: no allowance beyond the budget.
    delivery: new Delivery({ transport: 'sse', budgetBytes: config.slowConsumerBytes, allowanceBytes: 0, hub: gateway.hub, metrics: gateway.metrics }),
    sharing: config.sseShareStreams === 'on' ? new StreamSharing(gateway.hub) : undefined,
    heartbeatMs: config.heartbeatMs,
    retryMs: config.retryMs,
    stateOf(topic) {
      return topic.startsWith(CONTENT_TOPIC_PREFIX) ? items.state(topic.slice(CONTENT_TOPIC_PREFIX.length)) : undefined;
    },
  };
  registerSseRoutes(gateway, ctx, items);
}
