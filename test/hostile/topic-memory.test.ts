// Finding 2 of issue 13: topic names had no length limit, and a topic outlived its last
// subscriber until --history-ttl-ms, so 10 anonymous sockets × 100 joins with 0.4 MB names
// took the gateway from 297 MB to 1.1 GB and the heap still held 1 GB after every socket
// closed. Now a name is at most 255 bytes and a topic nobody holds is dropped when its last
// subscriber leaves: the heap returns to its baseline after the flood.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { RawClient, sleep, startRealtimeGateway, waitFor, type Frame } from '../realtime/helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap in use after full collections (several, so finalizers and weak maps settle). */
async function settledHeap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(20);
  }
  return process.memoryUsage().heapUsed;
}

const MB = 1024 * 1024;
/** Rate limits out of the way: this file is about memory, the limits have their own tests. */
const UNLIMITED = 1_000_000;
let gw: TestGateway;

beforeAll(async () => {
  gw = await startRealtimeGateway({
    realtimeMaxJoinsPerSecond: UNLIMITED,
    realtimeUserJoinsPerSecond: UNLIMITED,
    realtimeUserJoinBurst: UNLIMITED,
    realtimeSocketJoinsPerSecond: UNLIMITED,
    realtimeMaxEventsPerSecond: UNLIMITED,
    realtimeEventBurst: UNLIMITED,
    realtimeUserEventsPerSecond: UNLIMITED,
    realtimeUserEventBurst: UNLIMITED,
    realtimeMaxChannelsPerClient: 1000,
  });
});
afterAll(() => gw.stop());

const replies = (raw: RawClient): number => raw.frames.filter((f: Frame) => Array.isArray(f) && f[3] === 'phx_reply').length;

/** `sockets` anonymous sockets, each joining `joins` topics named by `name`; waits for every reply, then closes them all. */
async function flood(sockets: number, joins: number, name: (s: number, j: number) => string): Promise<void> {
  const clients = await Promise.all(Array.from({ length: sockets }, () => RawClient.connect(gw)));
  for (const [s, raw] of clients.entries()) {
    for (let j = 0; j < joins; j++) raw.send([`${j}`, `${j}`, `realtime:${name(s, j)}`, 'phx_join', { config: {} }]);
  }
  await waitFor(() => clients.every((c) => replies(c) === joins), 'every join answered', 60_000);
  for (const c of clients) c.close();
  await waitFor(() => gw.gateway.connections.count('ws') === 0, 'every socket gone', 10_000);
  // The client-side copies of the frames are the test's, not the gateway's: drop them.
  for (const c of clients) c.frames.length = 0;
}

describe('memory after a flood of joins (finding 2)', () => {
  it('returns to its baseline after 10 sockets × 20 joins with 0.4 MB topic names', async () => {
    await flood(1, 1, () => 'warm-up');
    const topicsBefore = gw.gateway.hub.topicCount;
    const before = await settledHeap();
    const big = 'x'.repeat(400_000);
    await flood(10, 20, (s, j) => `${s}-${j}-${big}`);
    const after = await settledHeap();
    expect(gw.gateway.hub.topicCount).toBe(topicsBefore);
    expect((after - before) / MB).toBeLessThan(20);
  });

  it('drops each channel topic when its last subscriber leaves, not after --history-ttl-ms', async () => {
    const topicsBefore = gw.gateway.hub.topicCount;
    const before = await settledHeap();
    await flood(10, 200, (s, j) => `room-${s}-${j}-${'y'.repeat(200)}`);
    expect(gw.gateway.hub.topicCount).toBe(topicsBefore);
    const after = await settledHeap();
    expect((after - before) / MB).toBeLessThan(20);
  });
});
