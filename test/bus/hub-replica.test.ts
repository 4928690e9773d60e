// The hub's cluster replica, driven through the in-process MemoryCluster so every case is
// deterministic: offsets come from the bus and match on every node; a node cut off from
// the bus fills in what it missed, in order, before anything newer; a gap the bus's
// history no longer covers, or a topic recreated on the bus, interrupts the subscribers
// (they resume and are told reset) instead of skipping silently.
import { describe, expect, it } from 'vitest';
import { Hub, type HubMessage, type Subscriber, type WireEncoder } from '../../src/core/hub.js';
import { MemoryCluster, type MemoryBus } from '../../src/bus/memory.js';
import { BusUnavailableError } from '../../src/bus/types.js';
import { httpErrorOf } from '../../src/server/http-errors.js';
import { waitFor } from '../sse/helpers.js';

class Recorder implements Subscriber {
  readonly got: HubMessage[] = [];
  interruptions = 0;
  deliver(m: HubMessage): void {
    this.got.push(m);
  }
  interrupted(): void {
    this.interruptions++;
  }
  offsets(): number[] {
    return this.got.filter((m) => m.offset).map((m) => m.offset);
  }
}

async function node(cluster: MemoryCluster, historySize = 100): Promise<{ hub: Hub; bus: MemoryBus }> {
  const bus = cluster.connect();
  const hub = new Hub({ historySize, historyTtlMs: 60_000, bus });
  await bus.start({ message: (e) => hub.receive(e), resync: () => hub.resync() });
  return { hub, bus };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('hub replicas on a memory cluster', () => {
  it('numbers messages on the bus: every node sees the same epoch and offsets, and resumes the same', async () => {
    const cluster = new MemoryCluster(100);
    const [a, b] = [await node(cluster), await node(cluster)];
    await Promise.all([a.hub.prepare(['t']), b.hub.prepare(['t'])]);
    const ra = new Recorder();
    const rb = new Recorder();
    a.hub.subscribe('t', ra);
    b.hub.subscribe('t', rb);
    const sent = [await a.hub.publish('t', 'e', 1), await b.hub.publish('t', 'e', 2), await a.hub.publish('t', 'e', 3)];
    expect(sent.map((m) => m.offset)).toEqual([1, 2, 3]);
    await waitFor(() => ra.got.length === 3 && rb.got.length === 3, 'three on each node');
    expect(ra.offsets()).toEqual([1, 2, 3]);
    expect(rb.got.map((m) => m.data)).toEqual([1, 2, 3]);
    expect(a.hub.position('t')).toEqual(b.hub.position('t'));
    const fromA = a.hub.since('t', { epoch: sent[0]!.epoch, offset: 1 });
    const fromB = b.hub.since('t', { epoch: sent[0]!.epoch, offset: 1 });
    expect(fromA.kind === 'ok' && fromA.messages.map((m) => m.offset)).toEqual([2, 3]);
    expect(fromB.kind === 'ok' && fromB.messages.map((m) => m.offset)).toEqual([2, 3]);
  });

  it('loads a new replica with the history published before it existed', async () => {
    const cluster = new MemoryCluster(100);
    const a = await node(cluster);
    for (let i = 1; i <= 4; i++) await a.hub.publish('t', 'e', i);
    const late = await node(cluster);
    await late.hub.prepare(['t']);
    expect(late.hub.position('t').offset).toBe(4);
    const r = late.hub.since('t', { epoch: late.hub.position('t').epoch, offset: 2 });
    expect(r.kind === 'ok' && r.messages.map((m) => m.data)).toEqual([3, 4]);
  });

  it('fills in what a node missed while it was cut off, in order, before anything newer', async () => {
    const cluster = new MemoryCluster(100);
    const [a, b] = [await node(cluster), await node(cluster)];
    await b.hub.prepare(['t']);
    const rb = new Recorder();
    b.hub.subscribe('t', rb);
    await a.hub.publish('t', 'e', 1);
    await waitFor(() => rb.got.length === 1, 'first');
    b.bus.setConnected(false);
    await expect(b.hub.prepare(['t'])).rejects.toBeInstanceOf(BusUnavailableError);
    for (let i = 2; i <= 5; i++) await a.hub.publish('t', 'e', i);
    await settle();
    expect(rb.got.length).toBe(1);
    b.bus.setConnected(true); // resync: loads 2..5
    await a.hub.publish('t', 'e', 6);
    await waitFor(() => rb.got.length === 6, 'all six');
    expect(rb.offsets()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rb.interruptions).toBe(0);
  });

  it('fills a gap noticed on the live feed (a message arrives with a later offset) from history first', async () => {
    const cluster = new MemoryCluster(100);
    const [a, b] = [await node(cluster), await node(cluster)];
    await b.hub.prepare(['t']);
    const rb = new Recorder();
    b.hub.subscribe('t', rb);
    // Publish on the bus behind every node's back (as if B's copy of offsets 1-3 were lost in transit).
    b.bus.setConnected(false);
    for (let i = 1; i <= 3; i++) await a.hub.publish('t', 'e', i);
    // Reconnect without the resync a real bus would trigger, so only the live feed can reveal the gap.
    (b.bus as unknown as { up: boolean }).up = true;
    cluster.attach(b.bus);
    await a.hub.publish('t', 'e', 4);
    await waitFor(() => rb.got.length === 4, 'all four');
    expect(rb.offsets()).toEqual([1, 2, 3, 4]);
  });

  it('interrupts the subscribers when the history no longer covers the gap', async () => {
    const cluster = new MemoryCluster(3);
    const [a, b] = [await node(cluster, 3), await node(cluster, 3)];
    await b.hub.prepare(['t']);
    const rb = new Recorder();
    b.hub.subscribe('t', rb);
    b.bus.setConnected(false);
    for (let i = 1; i <= 6; i++) await a.hub.publish('t', 'e', i); // the bus keeps 4..6 only
    b.bus.setConnected(true);
    await waitFor(() => rb.interruptions === 1, 'the interruption');
    expect(b.hub.position('t').offset).toBe(6);
    const r = b.hub.since('t', { epoch: b.hub.position('t').epoch, offset: 1 });
    expect(r.kind).toBe('reset');
  });

  it('interrupts the subscribers when the topic was recreated on the bus (a new epoch)', async () => {
    const cluster = new MemoryCluster(100);
    const [a, b] = [await node(cluster), await node(cluster)];
    await b.hub.prepare(['t']);
    const before = b.hub.position('t').epoch;
    const rb = new Recorder();
    b.hub.subscribe('t', rb);
    await a.hub.publish('t', 'e', 1);
    await waitFor(() => rb.got.length === 1, 'first');
    cluster.forget('t');
    await a.hub.publish('t', 'e', 'new');
    await waitFor(() => rb.interruptions === 1, 'the interruption');
    expect(b.hub.position('t').epoch).not.toBe(before);
    expect(b.hub.since('t', { epoch: before, offset: 1 })).toMatchObject({ kind: 'reset', reason: 'epoch' });
  });

  it('encodes a message once per node, however many subscribers it has there', async () => {
    const cluster = new MemoryCluster(100);
    const [a, b] = [await node(cluster), await node(cluster)];
    let encodes = 0;
    const counting: WireEncoder<string> = {
      name: 'counting',
      encode: (m) => {
        encodes++;
        return JSON.stringify(m.data);
      },
    };
    const frames: string[] = [];
    for (let i = 0; i < 5; i++) b.hub.subscribe('wide', { deliver: (m) => void frames.push(m.encode(counting)) });
    await a.hub.publish('wide', 'e', { n: 1 }, { retain: false });
    await a.hub.publish('wide', 'e', { n: 2 }, { retain: false });
    await waitFor(() => frames.length === 10, 'ten deliveries on B');
    expect(encodes).toBe(2);
  });

  it('delivers to local members first with the origin (so a sender can skip itself), drops its own echo, and refuses while cut off', async () => {
    const cluster = new MemoryCluster(100);
    const [a, b] = [await node(cluster), await node(cluster)];
    const ra = new Recorder();
    const rb = new Recorder();
    a.hub.subscribe('room', ra);
    b.hub.subscribe('room', rb);
    await b.hub.follow('room');
    const me = {};
    const sent = a.hub.publish('room', 'broadcast', { x: 1 }, { origin: me, retain: false });
    // On A at once, before the bus answered; on B through the bus.
    expect(ra.got.map((m) => m.origin)).toEqual([me]);
    await sent;
    await waitFor(() => rb.got.length === 1, 'the copy on B');
    expect(rb.got[0]!.origin).toBeUndefined();
    expect(ra.got[0]!.offset).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(ra.got).toHaveLength(1); // A's echo from the bus was dropped
    a.bus.setConnected(false);
    // The hub rejects with the bus's own error; HTTP answers it 503 (through the one mapping).
    const refused = await a.hub.publish('room', 'broadcast', {}, { retain: false }).then(() => undefined, (err: unknown) => err);
    expect(refused).toBeInstanceOf(BusUnavailableError);
    expect(httpErrorOf(refused)).toMatchObject({ status: 503, code: 'bus_unavailable' });
  });
});
