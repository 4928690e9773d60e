import { describe, expect, it, vi } from 'vitest';
import { type HubMessage, type WireEncoder } from '../../src/core/hub.js';
import { createLocalHub } from '../../src/bus/memory.js';

const collect = () => {
  const got: HubMessage[] = [];
  return { got, deliver: (m: HubMessage) => void got.push(m) };
};

describe('Hub', () => {
  it('assigns contiguous per-topic offsets under one epoch and delivers to subscribers', async () => {
    const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });
    await hub.prepare(['t', 'other']);
    const a = collect();
    hub.subscribe('t', a);
    await hub.publish('t', 'progress', { p: 1 });
    await hub.publish('other', 'progress', { p: 9 });
    await hub.publish('t', 'progress', { p: 2 });
    expect(a.got.map((m) => m.offset)).toEqual([1, 2]);
    expect(new Set(a.got.map((m) => m.epoch)).size).toBe(1);
    expect(hub.position('other').offset).toBe(1);
  });

  it('replays exactly the missed messages, in order', async () => {
    const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });
    await hub.prepare(['t']);
    for (let i = 1; i <= 6; i++) await hub.publish('t', 'progress', { i });
    const { epoch } = hub.position('t');
    const r = hub.since('t', { epoch, offset: 3 });
    expect(r.kind).toBe('ok');
    if (r.kind === 'ok') expect(r.messages.map((m) => m.offset)).toEqual([4, 5, 6]);
    const none = hub.since('t', { epoch, offset: 6 });
    expect(none).toEqual({ kind: 'ok', messages: [] });
  });

  it('answers reset when history no longer covers the gap, the epoch differs, or the position is ahead', async () => {
    const hub = createLocalHub({ historySize: 3, historyTtlMs: 60_000 });
    await hub.prepare(['t']);
    for (let i = 1; i <= 10; i++) await hub.publish('t', 'progress', { i });
    const { epoch } = hub.position('t');
    expect(hub.since('t', { epoch, offset: 7 }).kind).toBe('ok'); // 8,9,10 retained
    expect(hub.since('t', { epoch, offset: 6 })).toMatchObject({ kind: 'reset', reason: 'expired' });
    expect(hub.since('t', { epoch: 'other', offset: 9 })).toMatchObject({ kind: 'reset', reason: 'epoch' });
    expect(hub.since('t', { epoch, offset: 11 })).toMatchObject({ kind: 'reset', reason: 'ahead' });
  });

  it('after a new epoch, continues from its start when its history is complete (nothing replayable is skipped)', async () => {
    const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });
    await hub.prepare(['t']);
    for (let i = 1; i <= 3; i++) await hub.publish('t', 'progress', { i });
    const { epoch } = hub.position('t');
    expect(hub.since('t', { epoch: 'gone', offset: 7 })).toEqual({ kind: 'reset', reason: 'epoch', position: { epoch, offset: 0 } });
    const after = hub.since('t', { epoch, offset: 0 });
    expect(after.kind === 'ok' && after.messages.map((m) => m.offset)).toEqual([1, 2, 3]);
    // Once history no longer starts at offset 1, the reset points at the current position.
    const short = createLocalHub({ historySize: 2, historyTtlMs: 60_000 });
    await short.prepare(['t']);
    for (let i = 1; i <= 3; i++) await short.publish('t', 'progress', { i });
    expect(short.since('t', { epoch: 'gone', offset: 1 })).toMatchObject({ kind: 'reset', reason: 'epoch', position: { offset: 3 } });
  });

  it('expires history by age', async () => {
    vi.useFakeTimers();
    try {
      const hub = createLocalHub({ historySize: 100, historyTtlMs: 1000 });
      await hub.prepare(['t']);
      await hub.publish('t', 'progress', {});
      vi.advanceTimersByTime(1500);
      await hub.publish('t', 'progress', {});
      const { epoch } = hub.position('t');
      expect(hub.since('t', { epoch, offset: 0 })).toMatchObject({ kind: 'reset', reason: 'expired' });
      expect(hub.since('t', { epoch, offset: 1 }).kind).toBe('ok');
    } finally {
      vi.useRealTimers();
    }
  });

  it('encodes a message once per wire format however many subscribers receive it', async () => {
    const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });
    const encode = vi.fn((m: HubMessage) => `frame ${m.offset}`);
    const enc: WireEncoder<string> = { name: 'test', encode };
    const frames: string[] = [];
    for (let i = 0; i < 50; i++) hub.subscribe('t', { deliver: (m) => void frames.push(m.encode(enc)) });
    await hub.publish('t', 'progress', {});
    expect(frames).toHaveLength(50);
    expect(encode).toHaveBeenCalledTimes(1);
  });

  it('delivers a message that is not retained to local subscribers before the bus answers', () => {
    const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000 });
    const a = collect();
    hub.subscribe('room', a);
    const sent = hub.publish('room', 'broadcast', { x: 1 }, { retain: false });
    expect(a.got.map((m) => m.data)).toEqual([{ x: 1 }]);
    return sent;
  });

  it('does not retain ephemeral messages and forgets idle topics on sweep, after the linger', async () => {
    vi.useFakeTimers();
    try {
      const hub = createLocalHub({ historySize: 10, historyTtlMs: 60_000, lingerMs: 1000 });
      const m = await hub.publish('e', 'presence_diff', {}, { retain: false });
      expect(m.offset).toBe(0);
      const sub = collect();
      hub.subscribe('e', sub);
      await hub.prepare(['t']);
      await hub.publish('t', 'progress', {});
      hub.unsubscribe('e', sub);
      vi.advanceTimersByTime(500);
      hub.sweep();
      expect(hub.has('t')).toBe(true); // still within the linger
      vi.advanceTimersByTime(1000);
      hub.sweep();
      expect(hub.has('t')).toBe(false);
      expect(hub.has('e')).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });
});
