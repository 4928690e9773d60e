// Removes what a throw-away cluster (a bench's or a test's) left on the shared bus
// servers: every Redis key, or every JetStream stream and KV bucket, under its prefix.
import { Redis } from 'ioredis';
import { connect } from 'nats';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

export async function cleanupBus(kind: 'memory' | 'redis' | 'nats', prefix: string, urls: { redisUrl?: string; natsUrl?: string } = {}): Promise<void> {
  if (kind === 'redis') {
    // A Redis Cluster of a test's own is thrown away whole; nothing to clean key by key.
    if (urls.redisUrl?.startsWith('redis+cluster:')) return;
    const redis = new Redis(urls.redisUrl ?? DEFAULT_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => undefined); // a server already gone is reported by connect() below
    try {
      await redis.connect();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
    } catch {
      // a private server that a test already stopped: nothing left to clean
    } finally {
      redis.disconnect();
    }
  } else if (kind === 'nats') {
    try {
      const nc = await connect({ servers: urls.natsUrl ?? DEFAULT_NATS_URL, maxReconnectAttempts: 0, timeout: 2000 });
      const jsm = await nc.jetstreamManager();
      for await (const s of jsm.streams.list()) {
        const name = s.config.name;
        if (name.startsWith(`${prefix}_`) || name.startsWith(`KV_${prefix}_`)) await jsm.streams.delete(name);
      }
      await nc.close();
    } catch {
      // a private server that a test already stopped
    }
  }
}
