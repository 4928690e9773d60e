// `/healthz` and `/readyz`, the probes an orchestrator or load balancer polls.
//
// - `/healthz` answers 200 while the process can run a request at all (liveness: a
//   failing liveness probe means "restart me").
// - `/readyz` answers 200 only when every readiness check passes, else 503 with a JSON
//   error naming each check that failed (readiness: "send me no new traffic").
//
// The default checks below are placeholders that modules owning a dependency replace
// by registering a check of the same name on the `readiness` service (see readiness.ts).
import type { GatewayConfig } from '../core/config.js';
import type { ConnectionManager } from './connections.js';
import type { ReadinessChecks } from './readiness.js';
import type { Router } from './router.js';
import { defineModule, type Services } from './services.js';
import { sendJson } from './http-errors.js';

export const healthModule = defineModule({
  name: 'health',
  needs: ['readiness', 'connections', 'config', 'router'],
  uses: ['database'],
  start: ({ readiness, connections, config, router, database }) => registerHealth(readiness, connections, config, router, database),
});

function registerHealth(
  readiness: ReadinessChecks,
  connections: ConnectionManager,
  config: GatewayConfig,
  router: Router,
  database: Services['database'] | undefined,
): void {
  const startedAt = Date.now();

  // During a drain the gateway refuses new streams, so the balancer should stop sending them.
  readiness.setDefault('accepting', () => (connections.isDraining ? { ready: false, detail: 'draining for shutdown' } : true));

  // The change feed is ready once connected to its database and capturing. Without a
  // database module there is no feed to wait for: that is "not configured", not "down".
  readiness.setDefault('database', () => {
    const db = database;
    if (!db) return { ready: true, detail: 'not configured' };
    if (db.changeFeed.ready) return { ready: true, detail: 'change feed connected' };
    const why = db.changeFeed.error?.message;
    return { ready: false, detail: why ? `change feed is not connected to its database: ${why}` : 'change feed is not connected to its database' };
  });

  // The in-memory bus is always connected. A Redis or NATS bus module replaces this
  // check with one that reports its connection; until one does, a configured external
  // bus cannot be proven connected, so the gateway must not claim to be ready.
  readiness.setDefault('bus', () =>
    config.bus === 'memory' ? { ready: true, detail: 'in-memory' } : { ready: false, detail: `the ${config.bus} bus reports no connection (no module registered a "bus" check)` },
  );

  router.on(['GET', 'HEAD'], '/healthz', ({ res }) =>
    sendJson(res, 200, { status: 'ok', uptimeSeconds: Math.round((Date.now() - startedAt) / 1000), pid: process.pid }),
  );

  router.on(['GET', 'HEAD'], '/readyz', async ({ res }) => {
    const report = await readiness.evaluate();
    if (report.ready) {
      sendJson(res, 200, { status: 'ready', checks: report.checks });
      return;
    }
    const failing = report.checks.filter((c) => !c.ready).map((c) => (c.detail ? `${c.name} (${c.detail})` : c.name));
    sendJson(res, 503, { error: { code: 'not_ready', message: `not ready: ${failing.join(', ')}` }, checks: report.checks });
  });
}
