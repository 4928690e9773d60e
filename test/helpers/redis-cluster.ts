// A real three-node Redis Cluster of the test's own: Debian's redis-server started with
// --cluster-enabled on free ports, each in a temp dir, joined by `redis-cli --cluster
// create`, and stopped (and its files removed) afterwards. The machine's shared Redis on
// 6379 is not touched.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../bus/helpers.js';

export interface RedisClusterServer {
  ports: number[];
  /** `redis+cluster://127.0.0.1:<port>,…`, the URL a gateway takes. */
  url: string;
  stop(): Promise<void>;
}

function cli(port: number, ...args: string[]): string {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' });
  return r.stdout ?? '';
}

export async function startRedisCluster(nodes = 3): Promise<RedisClusterServer> {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-redis-cluster-'));
  const ports: number[] = [];
  for (let i = 0; i < nodes; i++) ports.push(await freePort());
  const children = ports.map((port) => {
    const nodeDir = join(dir, String(port));
    spawnSync('mkdir', ['-p', nodeDir]);
    return spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'), '--dir', nodeDir, '--save', '', '--appendonly', 'no', '--cluster-node-timeout', '2000'],
      { stdio: 'ignore' },
    );
  });
  const stop = async () => {
    for (const c of children) c.kill('SIGKILL');
    await sleep(50);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      for (let i = 0; i < 100 && cli(port, 'PING').trim() !== 'PONG'; i++) await sleep(50);
    }
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    for (let i = 0; i < 200; i++) {
      if (ports.every((p) => cli(p, 'CLUSTER', 'INFO').includes('cluster_state:ok'))) break;
      await sleep(50);
    }
    if (!ports.every((p) => cli(p, 'CLUSTER', 'INFO').includes('cluster_state:ok'))) throw new Error('the Redis Cluster did not reach cluster_state:ok');
  } catch (err) {
    await stop();
    throw err;
  }
  return { ports, url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, stop };
}
