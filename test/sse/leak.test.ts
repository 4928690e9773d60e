// Every close path frees everything: 10,000 streams opened and closed leave the gateway's
// heap near its baseline. The gateway runs in a child process (a process here may hold
// 20,000 open files, and this one holds the 10,000 client sockets) and reports its heap
// after a full GC over IPC.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { openRawStreams, startServerProcess, until, type ServerProcess } from '../../bench/sse-harness.js';

const STREAMS = 10_000;
const MB = 1024 * 1024;
let server: ServerProcess;
// A source address of our own, so our ephemeral ports do not collide with other tests'.
const localAddress = `127.0.${Math.floor(Math.random() * 200) + 20}.${Math.floor(Math.random() * 250) + 2}`;

beforeAll(async () => {
  server = await startServerProcess('gateway');
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

const stats = () => server.request({ cmd: 'stats' }, 'stats');

async function openAndClose(count: number): Promise<{ opened: number; heldHeap: number }> {
  const { sockets, failed, firstError } = await openRawStreams({ ...server, count, localAddress, concurrency: 200 });
  expect(failed, `streams that failed to open (first error: ${firstError})`).toBe(0);
  const open = await stats();
  const held = await server.memory();
  closeAll(sockets);
  expect(await until(async () => (await stats()).connections === 0, 30_000), 'the gateway to free every connection').toBe(true);
  return { opened: open.connections, heldHeap: held.heapUsed };
}

function closeAll(sockets: Socket[]): void {
  for (const s of sockets) s.destroy();
}

it(
  'opening and closing 10,000 streams leaves the heap near its baseline',
  async () => {
    await openAndClose(1000); // warm up: JIT, pools, one-time caches
    const baseline = await server.memory();

    const { opened, heldHeap } = await openAndClose(STREAMS);
    expect(opened).toBe(STREAMS);
    const after = await server.memory();
    const { subscribers, connections } = await stats();

    const held = heldHeap - baseline.heapUsed;
    const left = after.heapUsed - baseline.heapUsed;
    console.log(
      `leak check: baseline heap ${(baseline.heapUsed / MB).toFixed(1)} MB; with ${STREAMS} streams +${(held / MB).toFixed(1)} MB ` +
        `(${(held / STREAMS / 1024).toFixed(2)} KB/stream); after closing +${(left / MB).toFixed(2)} MB`,
    );
    expect(connections).toBe(0);
    expect(subscribers).toBe(0);
    // The streams really were held (so the check can fail), and almost nothing stayed behind.
    expect(held).toBeGreaterThan(STREAMS * 1024);
    expect(left).toBeLessThan(Math.max(2 * MB, held * 0.05));
  },
  120_000,
);
