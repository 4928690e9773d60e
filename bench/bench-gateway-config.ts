// The configuration every benchmark's gateway process runs with: a throw-away data
// directory, no caps in the way of the load, and no embedded database. The database is
// a WebAssembly PostgreSQL holding a few hundred MB that would start in the background
// and swamp the memory-per-connection slope the benches measure.
import { loadConfig, type GatewayConfig } from '../src/core/config.js';

export const BENCH_JWT_SECRET = 'bench-secret-bench-secret-bench-secret-0123';

export function benchGatewayConfig(dataDir: string, overrides: Partial<GatewayConfig> = {}, env: NodeJS.ProcessEnv = {}): GatewayConfig {
  return loadConfig({}, env, {
    port: 0,
    host: '127.0.0.1',
    dataDir,
    jwtSecret: BENCH_JWT_SECRET,
    logLevel: 'warn',
    maxConnections: 1_000_000,
    maxConnectionsPerUser: 1_000_000,
    // A benchmark is one identity (one key, one address) many times over: no bucket may refuse it.
    maxConnectionsPerAddress: 1_000_000,
    realtimeMaxJoinsPerSecond: 10_000_000,
    realtimeUserJoinsPerSecond: 10_000_000,
    realtimeUserJoinBurst: 10_000_000,
    realtimeSocketJoinsPerSecond: 10_000_000,
    realtimeEventBurst: 10_000_000,
    realtimeUserEventsPerSecond: 10_000_000,
    realtimeUserEventBurst: 10_000_000,
    dbStart: 'lazy',
    ...overrides,
  });
}
