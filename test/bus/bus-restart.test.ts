// An acknowledged publish is never lost across a bus restart. Redis is killed (kill -9)
// and restarted empty while node A keeps publishing and SSE streams on node B keep
// reading: publishes while it is down are refused (503, never acknowledged), and every
// publish answered 2xx — those accepted after Redis was back but before node B resynced
// included — reaches every stream exactly once. The streams are told `reset` (the topic's
// epoch is new), and then replayed what the new epoch holds: only what is truly gone is
// skipped. Run several times, since the window it guards is a race.
import { afterAll, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { http, openClient, waitFor, type Client } from '../sse/helpers.js';
import { privateServer, startCluster } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('a Redis restart with nothing kept', () => {
  it.each([1, 2, 3])('loses no acknowledged publish and repeats none (round %i)', async (round) => {
    const server = await privateServer('redis', { keepData: false });
    const cluster = await startCluster('redis', 2, { historySize: 1000 }, { redisUrl: server.url });
    cleanups.push(
      () => cluster.stop(),
      () => server.stop(),
    );
    const [a, b] = cluster.nodes as [TestGateway, TestGateway];
    const token = a.keys.service_role;
    const user = `restart-${round}`;
    const streams: Client[] = [];
    for (let i = 0; i < 4; i++) streams.push(openClient(`${b.url}/v1/stream?topic=user:${user}`, b.keys.service_role));
    await waitFor(() => streams.every((s) => s.of('ready').length === 1), 'streams ready on B');

    // Every publish carries its own number n; an answered 2xx is acknowledged.
    const acknowledged: number[] = [];
    const refused: number[] = [];
    let publishing = true;
    let n = 0;
    const publisher = (async () => {
      while (publishing) {
        const k = ++n;
        const r = await http('POST', `${a.url}/api/content/restart-item-${round}/progress`, { token, body: { progress: k % 100, n: k, userId: user } }).catch(() => undefined);
        if (r && (r.status === 200 || r.status === 201)) acknowledged.push(k);
        else refused.push(k);
        await sleep(10);
      }
    })();
    await sleep(300);
    await server.kill();
    await sleep(500);
    await server.start(); // empty: every topic's epoch starts again
    await waitFor(() => a.gateway.bus.connected, 'A reconnected', 20_000);
    await sleep(700);
    publishing = false;
    await publisher;
    expect(refused.length).toBeGreaterThan(0); // the outage was real
    expect(acknowledged.length).toBeGreaterThan(20);
    const numbers = (s: Client) => s.of('progress').map((e) => (e.data as unknown as { n: number }).n);
    const last = acknowledged.at(-1)!;
    await waitFor(() => streams.every((s) => numbers(s).includes(last)), 'the last acknowledged publish on every stream', 20_000);
    await sleep(300);
    for (const s of streams) {
      const got = numbers(s);
      // Every acknowledged publish, once, in order. A refused publish may still have gone out (its
      // answer was lost with the connection): such an ambiguous one may appear, never twice.
      expect(got.filter((k) => acknowledged.includes(k))).toEqual(acknowledged);
      expect(got.filter((k) => !acknowledged.includes(k)).every((k) => refused.includes(k))).toBe(true);
      expect(new Set(got).size).toBe(got.length);
      expect(s.of('reset').length).toBeLessThanOrEqual(1);
      s.close();
    }
  }, 90_000);
});
