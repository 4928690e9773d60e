// A bus whose server is up is connected by the time start() resolves: the gateway checks
// `connected` right after start() to warn that the bus is unreachable, and a warning while
// the Redis pattern subscription is still one round trip away would be a false alarm.
import { describe, expect, it } from 'vitest';
import { NatsBus } from '../../src/bus/nats.js';
import { RedisBus } from '../../src/bus/redis.js';
import type { Bus } from '../../src/bus/types.js';
import { createLogger } from '../../src/core/log.js';
import { cleanBus, randomPrefix, NATS_URL, REDIS_URL } from './helpers.js';

const log = createLogger({ level: 'silent', pretty: false, destination: process.stderr });

describe.each(['redis', 'nats'] as const)('the %s bus starting against a running server', (kind) => {
  it('is connected, subscription included, when start() resolves', async () => {
    const prefix = randomPrefix();
    const options = { prefix, historySize: 10, historyTtlMs: 60_000, nodeTimeoutMs: 15_000, recordTtlMs: 60_000, dedupeTtlMs: 60_000, log };
    const bus: Bus = kind === 'redis' ? new RedisBus({ ...options, url: REDIS_URL }) : new NatsBus({ ...options, servers: NATS_URL });
    try {
      await bus.start({ message: () => undefined, resync: () => undefined });
      expect(bus.connected, bus.detail).toBe(true);
      expect(bus.detail).toMatch(/^connected to /);
    } finally {
      await bus.close();
      await cleanBus(kind, prefix);
    }
  });
});
