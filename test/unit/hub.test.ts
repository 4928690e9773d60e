import { describe, expect, it, vi } from 'vitest';
import { Hub, type HubMessage, type WireEncoder } from '../../src/core/hub.js';

const collect = () => {
  const got: HubMessage[] = [];
  return { got, deliver: (m: HubMessage) => void got.push(m) };
};

describe('Hub', () => {
  it('assigns contiguous per-topic offsets under one epoch and delivers to subscribers', () => {
    const hub = new Hub({ historySize: 10, historyTtlMs: 60_000 });
    const a = collect();
    hub.subscribe('t', a);
    hub.publish('t', 'progress', { p: 1 });
    hub.publish('other', 'progress', { p: 9 });
    hub.publish('t', 'progress', { p: 2 });
    expect(a.got.map((m) => m.offset)).toEqual([1, 2]);
    expect(new Set(a.got.map((m) => m.epoch)).size).toBe(1);
    expect(hub.position('other').offset).toBe(1);
  });

  it('replays exactly the missed messages, in order', () => {
    const hub = new Hub({ historySize: 10, historyTtlMs: 60_000 });
    for (let i = 1; i <= 6; i++) hub.publish('t', 'progress', { i });
    const { epoch } = hub.position('t');
    const r = hub.since('t', { epoch, offset: 3 });
    expect(r.kind).toBe('ok');
    if (r.kind === 'ok') expect(r.messages.map((m) => m.offset)).toEqual([4, 5, 6]);
    const none = hub.since('t', { epoch, offset: 6 });
    expect(none).toEqual({ kind: 'ok', messages: [] });
  });

  it('answers reset when history no longer covers the gap, the epoch differs, or the position is ahead', () => {
    const hub = new Hub({ historySize: 3, historyTtlMs: 60_000 });
    for (let i = 1; i <= 10; i++) hub.publish('t', 'progress', { i });
    const { epoch } = hub.position('t');
    expect(hub.since('t', { epoch, offset: 7 }).kind).toBe('ok'); // 8,9,10 retained
    expect(hub.since('t', { epoch, offset: 6 })).toMatchObject({ kind: 'reset', reason: 'expired' });
    expect(hub.since('t', { epoch: 'other', offset: 9 })).toMatchObject({ kind: 'reset', reason: 'epoch' });
    expect(hub.since('t', { epoch, offset: 11 })).toMatchObject({ kind: 'reset', reason: 'ahead' });
  });

  it('expires history by age', () => {
    vi.useFakeTimers();
    try {
      const hub = new Hub({ historySize: 100, historyTtlMs: 1000 });
      hub.publish('t', 'progress', {});
      vi.advanceTimersByTime(1500);
      hub.publish('t', 'progress', {});
      const { epoch } = hub.position('t');
      expect(hub.since('t', { epoch, offset: 0 })).toMatchObject({ kind: 'reset', reason: 'expired' });
      expect(hub.since('t', { epoch, offset: 1 }).kind).toBe('ok');
    } finally {
      vi.useRealTimers();
    }
  });

  it('encodes a message once per wire format however many subscribers receive it', () => {
    const hub = new Hub({ historySize: 10, historyTtlMs: 60_000 });
    const encode = vi.fn((m: HubMessage) => `frame ${m.offset}`);
    const enc: WireEncoder<string> = { name: 'test', encode };
    const frames: string[] = [];
    for (let i = 0; i < 50; i++) hub.subscribe('t', { deliver: (m) => void frames.push(m.encode(enc)) });
    hub.publish('t', 'progress', {});
    expect(frames).toHaveLength(50);
    expect(encode).toHaveBeenCalledTimes(1);
  });

  it('does not retain ephemeral messages and forgets idle topics on sweep', () => {
    vi.useFakeTimers();
    try {
      const hub = new Hub({ historySize: 10, historyTtlMs: 1000 });
      const m = hub.publish('e', 'presence_diff', {}, { retain: false });
      expect(m.offset).toBe(0);
      hub.publish('t', 'progress', {});
      vi.advanceTimersByTime(2000);
      hub.sweep();
      expect(hub.has('t')).toBe(false);
      expect(hub.has('e')).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });
});
