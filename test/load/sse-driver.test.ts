// The SSE driver, the workers and the coordinator together, against a server that
// injects known faults: the load tester must count exactly what was injected.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFaultyServer, type FaultyServer } from './fixtures/faulty-sse-server.js';
import { runLoad } from '../../src/load/coordinator.js';
import { resolveThresholds } from '../../src/load/thresholds.js';
import type { RunSpec } from '../../src/load/spec.js';

let srv: FaultyServer;
beforeEach(async () => {
  srv = await startFaultyServer();
});
afterEach(async () => {
  await srv.close();
});

const spec = (over: Partial<RunSpec> = {}): RunSpec => ({
  name: 'driver-test',
  target: { kind: 'fanout', url: srv.url, serviceKey: 'k', pid: process.pid },
  durationMs: 3200,
  rampMs: 300,
  pattern: 'gradual',
  sse: { connections: 12, streams: 2, ratePerStream: 5, path: 'content', reconnect: true },
  thresholds: resolveThresholds([]),
  generator: { maxLagMs: 1000, maxCpuPct: 100 },
  drainMs: 500,
  ...over,
});

describe('SSE load against a faulty server', () => {
  it('counts injected drops, duplicates and reorderings exactly, per subscriber', async () => {
    srv.faults.drop.add(4);
    srv.faults.duplicate.add(6);
    srv.faults.reorder.add(8);
    const r = await runLoad(spec(), { baselineMs: 300 });
    const sse = r.groups.sse!;
    expect(sse.established).toBe(12);
    expect(sse.connectSuccessPct).toBe(100);
    // Every subscriber of both streams saw each fault once.
    expect(sse.deliveryTotal.lost).toBe(12);
    expect(sse.deliveryTotal.duplicates).toBe(12);
    expect(sse.deliveryTotal.reordered).toBe(12);
    expect(r.publish.sse!.ok).toBeGreaterThanOrEqual(20);
    // Received copies = published − dropped + duplicated, per subscriber.
    const perStream = r.publish.sse!.ok / 2;
    expect(sse.deliveryTotal.received).toBe(12 * (perStream - 1 + 1));
    expect(sse.latency.delivery!.count).toBe(sse.deliveryTotal.received);
    expect(r.metrics['sse.lost']).toBe(12);
    expect(r.thresholds.find((t) => t.metric === 'sse.connect.p99')?.status).toBe('pass');
    // Every judged message reached all subscribers of its stream except the dropped one, which reached none.
    expect(r.fanout.completePct).toBe(100);
    expect(r.generator.workers).toBe(2);
    expect(r.timeline.length).toBeGreaterThanOrEqual(3);
  });

  it('records latency against the server stamp and the intended publish time, and sees an injected delay', async () => {
    srv.faults.delayMs = 150;
    const r = await runLoad(spec({ sse: { connections: 4, streams: 1, ratePerStream: 5, path: 'content', reconnect: true } }), { baselineMs: 300 });
    const lat = r.groups.sse!.latency;
    expect(lat.delivery!.p50!).toBeGreaterThanOrEqual(145);
    expect(lat.endToEnd!.p50!).toBeGreaterThanOrEqual(lat.delivery!.p50!);
    expect(r.metrics['sse.latency.p99']).toBe(lat.delivery!.p99);
  });

  it('measures bytes on the wire per delivered message against the payload the publisher sent', async () => {
    const r = await runLoad(spec({ sse: { connections: 4, streams: 1, ratePerStream: 5, path: 'content', reconnect: true } }), { baselineMs: 300 });
    const sse = r.groups.sse!;
    const p = sse.perMessage;
    // The payload is what the publisher posted: {"progress":…,"stage":"load","lt":…,"lseq":…}.
    expect(p.payloadBytes!).toBeGreaterThan(50);
    expect(p.payloadBytes!).toBeLessThan(80);
    // On the wire each event also carries the id/event lines, the server's fields and HTTP chunk framing.
    const eventBytes = sse.bytesIn / sse.messages;
    expect(sse.wireBytesIn).toBeGreaterThan(sse.bytesIn);
    expect(p.wireBytes!).toBeGreaterThan(eventBytes);
    expect(p.wireBytes! - eventBytes).toBeLessThan(12); // "<hex>\r\n" … "\r\n" per write
    expect(p.overheadPct).toBeCloseTo(((p.wireBytes! - p.payloadBytes!) / p.wireBytes!) * 100, 0);
    expect(r.metrics['sse.wire_bytes_per_message']).toBe(p.wireBytes);
    // 4 connections × 5 events/s × ~(wire bytes per event) = the steady bandwidth per connection.
    expect(sse.bandwidthPerConnectionKBps!).toBeCloseTo((5 * p.wireBytes!) / 1024, 1);
  });

  it('sustained pattern: connections end and are replaced, which is churn, not instability or loss', async () => {
    const r = await runLoad(spec({ pattern: 'sustained', durationMs: 4500, sse: { connections: 8, streams: 2, ratePerStream: 5, path: 'content', reconnect: true } }), { baselineMs: 300 });
    const sse = r.groups.sse!;
    // Lifetimes are 1–3 s in a 4.5 s run: every connection was replaced at least once.
    expect(sse.connectAttempts).toBeGreaterThanOrEqual(16);
    expect(sse.reconnects).toBe(0);
    expect(sse.drops).toBe(0);
    expect(sse.stabilityPct).toBe(100);
    expect(sse.deliveryTotal.lost).toBe(0);
    expect(sse.deliveryTotal.duplicates).toBe(0);
  });

  it('counts drops, reconnects and downtime when the server cuts every stream', async () => {
    const cut = spec({
      sse: { connections: 6, streams: 1, ratePerStream: 5, path: 'content', reconnect: true },
      faults: [{ atMs: 1500, label: 'server drops every stream', run: async () => srv.dropAll() }],
    });
    const r = await runLoad(cut, { baselineMs: 300 });
    const sse = r.groups.sse!;
    expect(r.faults).toEqual([expect.objectContaining({ label: 'server drops every stream', ok: true })]);
    expect(sse.drops).toBe(6);
    expect(sse.reconnects).toBeGreaterThanOrEqual(6);
    expect(sse.stabilityPct).toBeLessThan(100);
    expect(sse.stabilityPct).toBeGreaterThan(50);
    // This server does not replay on Last-Event-ID, so what was published while the streams were down is lost.
    expect(sse.deliveryTotal.lost).toBeGreaterThan(0);
    expect(Object.keys(sse.closeCodes).length).toBeGreaterThan(0);
  });
});
