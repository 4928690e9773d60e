// Wires `--jwt-jwks` into the gateway: reads the key set before the gateway accepts
// anything (a file or inline set that is not a JWKS stops start-up with a message naming
// the option; a URL that is down is logged and retried), counts its reads in metrics, and
// makes `/readyz` say whether the keys could ever be read and what the last failure was.
import { ConfigError, type GatewayConfig } from '../core/config.js';
import { JwtKeySet, parseJwksSource } from '../core/jwt-keys.js';
import type { Logger } from '../core/log.js';
import type { GatewayMetrics } from './metrics.js';
import type { ReadinessAnswer } from './readiness.js';

export async function startJwtKeySet(config: GatewayConfig, log: Logger, metrics: GatewayMetrics): Promise<JwtKeySet | undefined> {
  if (!config.jwtJwks) return undefined;
  const keys = new JwtKeySet({
    source: parseJwksSource(config.jwtJwks),
    cooldownMs: config.jwtJwksCooldownMs,
    refreshMs: config.jwtJwksRefreshMs,
    log: log.child({ module: 'jwks' }),
    onRead: (ok, count) => {
      metrics.jwksReads.labels(ok ? 'ok' : 'error').inc();
      metrics.jwksKeys.set(count);
    },
  });
  try {
    await keys.start();
  } catch (err) {
    throw new ConfigError([`--jwt-jwks (FANOUT_JWT_JWKS): ${(err as Error).message}`]);
  }
  return keys;
}

/** Ready once the keys were read at least once; a later failed refresh keeps the held keys working, so it stays ready. */
export function jwksReadiness(keys: JwtKeySet): ReadinessAnswer {
  const s = keys.status();
  if (s.loadedAt === undefined) return { ready: false, detail: s.lastError ?? `the JWKS at ${s.source} has not been read yet` };
  const detail = `${s.keys} keys from ${s.source}` + (s.lastError ? `; last refresh failed: ${s.lastError}` : '');
  return { ready: true, detail };
}
