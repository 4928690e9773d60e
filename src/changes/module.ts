// The gateway module for the database side of Realtime: opens the database (PGlite by
// default, PostgreSQL with DATABASE_URL), runs the change feed, and provides the change
// feed and the private-channel authorizer to the Realtime channels through
// `gateway.database`. Registered before the Realtime module, which reads that slot.
import { Gauge } from 'prom-client';
import type { Gateway } from '../server/gateway.js';
import { DatabaseChannelAuthorizer } from './authorizer.js';
import { DatabaseBroadcastArchive } from './replay.js';
import { registerCommentRoutes } from './comments.js';
import { DatabaseChangeFeed } from './feed.js';
import { DatabaseRuntime } from './runtime.js';

const runtimes = new WeakMap<Gateway, DatabaseRuntime>();

/** The database runtime of a gateway (tests and benchmarks write through it to the embedded database). */
export function databaseRuntime(gateway: Gateway): DatabaseRuntime | undefined {
  return runtimes.get(gateway);
}

export function registerChanges(gateway: Gateway): void {
  const { config, log } = gateway;
  // In a cluster sharing one database, exactly one gateway reads the outbox (src/changes/leader.ts).
  const leader = gateway.bus.shared
    ? new Gauge({ name: 'fanout_changes_leader', help: '1 while this gateway leads the cluster change feed (reads the outbox for every node)', registers: [gateway.metrics.registry] })
    : undefined;
  leader?.set(0);
  const runtime = new DatabaseRuntime({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    start: config.dbStart,
    replayMs: config.changesReplayMs,
    consumer: config.changesConsumer,
    capture: config.changesCapture,
    hub: gateway.hub,
    sharedBus: gateway.bus.shared,
    metrics: gateway.metrics,
    log: log.child({ component: 'changes' }),
    onLeader: (leading) => leader?.set(leading ? 1 : 0),
  });
  runtimes.set(gateway, runtime);
  const changeFeed = new DatabaseChangeFeed(runtime);
  gateway.database = { changeFeed, authorizer: new DatabaseChannelAuthorizer(runtime, log), archive: new DatabaseBroadcastArchive(runtime, log) };
  registerCommentRoutes(gateway, runtime);
  gateway.onShutdown(() => runtime.close());
  runtime.start();
}
