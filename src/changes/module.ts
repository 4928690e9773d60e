// The gateway module for the database side of Realtime: opens the database (PGlite by
// default, PostgreSQL with DATABASE_URL), runs the change feed, and provides the change
// feed, the private-channel authorizer and the broadcast archive as the `database`
// service (for Realtime and the readiness probe), and the runtime itself as
// `databaseRuntime` (the serve command's start-up report; tests and benchmarks write
// through it to the embedded database).
import { Gauge } from 'prom-client';
import { defineModule } from '../server/services.js';
import { DatabaseChannelAuthorizer } from './authorizer.js';
import { DatabaseBroadcastArchive } from './replay.js';
import { registerCommentRoutes } from './comments.js';
import { DatabaseChangeFeed } from './feed.js';
import { DatabaseRuntime } from './runtime.js';
import type { DatabaseServices } from './types.js';

declare module '../server/services.js' {
  interface Services {
    database: DatabaseServices;
    databaseRuntime: DatabaseRuntime;
  }
}

export const changesModule = defineModule({
  name: 'changes',
  needs: ['config', 'log', 'bus', 'hub', 'metrics', 'router', 'auth', 'lifecycle'],
  provides: ['database', 'databaseRuntime'],
  start(deps) {
    const { config, log, bus, metrics } = deps;
    // In a cluster sharing one database, exactly one gateway reads the outbox (src/changes/leader.ts).
    const leader = bus.shared
      ? new Gauge({ name: 'fanout_changes_leader', help: '1 while this gateway leads the cluster change feed (reads the outbox for every node)', registers: [metrics.registry] })
      : undefined;
    leader?.set(0);
    const runtime = new DatabaseRuntime({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      start: config.dbStart,
      replayMs: config.changesReplayMs,
      consumer: config.changesConsumer,
      capture: config.changesCapture,
      hub: deps.hub,
      sharedBus: bus.shared,
      metrics,
      log: log.child({ component: 'changes' }),
      onLeader: (leading) => leader?.set(leading ? 1 : 0),
    });
    const database: DatabaseServices = {
      changeFeed: new DatabaseChangeFeed(runtime),
      authorizer: new DatabaseChannelAuthorizer(runtime, log),
      archive: new DatabaseBroadcastArchive(runtime, log),
    };
    registerCommentRoutes(deps, runtime);
    deps.lifecycle.onShutdown(() => runtime.close());
    runtime.start();
    return { database, databaseRuntime: runtime };
  },
});
