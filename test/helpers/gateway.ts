// Starts a real gateway in this test process on a free port with a throw-away data
// directory, and hands back its URL and keys. Tests talk to it over real sockets.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type GatewayConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/log.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/server/gateway.js';
import { gatewayModules } from '../../src/server/modules.js';
import { defineModule, type FeatureModule } from '../../src/server/services.js';
import type { DatabaseServices } from '../../src/changes/types.js';

export interface TestGateway {
  gateway: Gateway;
  url: string;
  keys: { anon: string; service_role: string };
  /** A one-hour token for an `authenticated` user. */
  userToken(userId: string, expiresInSeconds?: number): Promise<string>;
  stop(): Promise<void>;
}

export const TEST_SECRET = 'test-secret-test-secret-test-secret-0123456789';

export async function startGateway(overrides: Partial<GatewayConfig> = {}, options: GatewayOptions = {}): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fanout-test-'));
  // dbStart lazy: gateways that never touch the database do not open one (PGlite's start-up
  // costs seconds of CPU); tests of the database side ask for 'eager'.
  const config = loadConfig({}, {}, { port: 0, host: '127.0.0.1', dataDir, jwtSecret: TEST_SECRET, logLevel: 'silent', dbStart: 'lazy', ...overrides });
  const logger = createLogger({ level: process.env.FANOUT_TEST_LOG ?? 'silent', pretty: false, destination: process.stderr });
  const gateway = await createGateway(config, { logger, ...options });
  await gateway.listen();
  const keys = await gateway.auth.projectKeys();
  return {
    gateway,
    url: gateway.url,
    keys,
    userToken: (userId, exp) => gateway.auth.userToken(userId, exp),
    async stop() {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The gateway's modules without the one called `name` (e.g. `changes`: a gateway with no database). */
export function modulesWithout(name: string): readonly FeatureModule[] {
  return gatewayModules.filter((m) => m.name !== name);
}

/**
 * The gateway's modules with the changes module replaced by one providing `database` as
 * `current()` returns it at each use: a test's fake of the contract in src/changes/types.ts,
 * swappable between tests without restarting the gateway.
 */
export function modulesWithDatabase(current: () => DatabaseServices): readonly FeatureModule[] {
  const database: DatabaseServices = {
    get changeFeed() {
      return current().changeFeed;
    },
    get authorizer() {
      return current().authorizer;
    },
    get archive() {
      return current().archive;
    },
  };
  const fake = defineModule({ name: 'changes', needs: [], provides: ['database'], start: () => ({ database }) });
  return gatewayModules.map((m) => (m.name === 'changes' ? fake : m));
}
