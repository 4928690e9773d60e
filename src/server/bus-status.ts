// What HTTP shows of the bus: `GET /api/bus` (its kind, this node's id, whether it is
// connected and why not) and the `bus` check of `/readyz`. The bus itself (src/bus) knows
// nothing of HTTP.
import type { Bus } from '../bus/types.js';
import { sendJson } from './http-errors.js';
import type { ReadinessChecks } from './readiness.js';
import type { Router } from './router.js';

export function registerBusStatus(bus: Bus, router: Router, readiness: ReadinessChecks): void {
  // /readyz: not ready while a shared bus is down (publishes would answer 503, resumes could not be proven).
  // A gateway's own in-process engine is always there: the default check (server/health.ts) says so.
  if (bus.shared) readiness.set('bus', () => ({ ready: bus.connected, detail: `${bus.kind} node ${bus.nodeId}: ${bus.detail}` }));
  router.on('GET', '/api/bus', ({ res }) => sendJson(res, bus.connected ? 200 : 503, { kind: bus.kind, node: bus.nodeId, connected: bus.connected, detail: bus.detail }));
}
