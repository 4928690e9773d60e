// The SSE module: progress streams, resume, heartbeats and the long-poll fallback.
// Needs the content module (ownership for authorization, latest state for resets),
// which modules.ts loads first.
import { contentOf } from '../content/index.js';
import { contentState } from '../content/registry.js';
import { CONTENT_TOPIC_PREFIX } from '../content/topics.js';
import type { Gateway } from '../server/gateway.js';
import { registerSseRoutes } from './routes.js';
import { DeliveryTally, type StreamContext } from './stream.js';
import { StreamSharing } from './sharing.js';

export function registerSse(gateway: Gateway): void {
  const services = contentOf(gateway);
  const { config } = gateway;
  const ctx: StreamContext = {
    hub: gateway.hub,
    connections: gateway.connections,
    metrics: gateway.metrics,
    tally: new DeliveryTally(gateway.hub, gateway.metrics),
    sharing: config.sseShareStreams === 'on' ? new StreamSharing(gateway.hub) : undefined,
    slowConsumerBytes: config.slowConsumerBytes,
    heartbeatMs: config.heartbeatMs,
    retryMs: config.retryMs,
    stateOf(topic) {
      if (!topic.startsWith(CONTENT_TOPIC_PREFIX)) return undefined;
      const item = services.registry.get(topic.slice(CONTENT_TOPIC_PREFIX.length));
      return item ? contentState(item) : undefined;
    },
  };
  gateway.hub.observe(() => ctx.tally.flush());
  registerSseRoutes(gateway, ctx, services);
}
