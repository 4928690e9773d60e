import { describe, expect, it } from 'vitest';
import { buildAlertConfig } from '../../src/monitor/alert-rules.js';
import { AlertEngine, type AlertEvent } from '../../src/monitor/alerts.js';
import { COUNTERS, type Snapshot } from '../../src/monitor/signals.js';

/** A history of snapshots whose `connections_sse` gauge follows the values given, one per second. */
class History {
  readonly snapshots: Snapshot[] = [];
  push(t: number, sse: number): void {
    const counters = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Snapshot['counters'];
    this.snapshots.push({ t, gauges: { connections_sse: sse }, counters, histograms: { delivery_latency: [], change_feed_lag: [] } });
  }
  window(ms: number): Snapshot[] {
    const last = this.snapshots[this.snapshots.length - 1]!;
    let i = this.snapshots.length - 1;
    while (i > 0 && this.snapshots[i]!.t > last.t - ms) i--;
    return this.snapshots.slice(i);
  }
}

function engineFor(rule: Record<string, unknown>): { engine: AlertEngine; events: AlertEvent[]; run(values: number[]): string[] } {
  const { rules } = buildAlertConfig({ defaults: false, rules: [{ name: 'sse', signal: 'connections_sse', op: '>', ...rule }] }, 'test');
  const engine = new AlertEngine(rules);
  const events: AlertEvent[] = [];
  engine.onEvent((e) => events.push(e));
  const history = new History();
  let t = 0;
  return {
    engine,
    events,
    /** Feeds one value per second; returns the state after each. */
    run(values) {
      return values.map((v) => {
        t += 1000;
        history.push(t, v);
        engine.evaluate(history, t);
        return engine.active()[0]?.state ?? 'inactive';
      });
    },
  };
}

describe('AlertEngine', () => {
  it('fires only after the condition held for `for`, and a short blip never fires', () => {
    const { run, events } = engineFor({ threshold: 150, resolve: 140, for: '2s', window: '1s' });
    expect(run([100, 160, 100, 160, 160, 160])).toEqual(['inactive', 'pending', 'inactive', 'pending', 'pending', 'firing']);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ rule: 'sse', status: 'firing', value: 160, threshold: 150, firedAt: 6000, at: 6000 });
  });

  it('keeps firing inside the hysteresis band and resolves only at or below the resolve level', () => {
    const { run, events } = engineFor({ threshold: 150, resolve: 140, window: '1s' });
    expect(run([151, 145, 149, 141, 140])).toEqual(['firing', 'firing', 'firing', 'firing', 'inactive']);
    expect(events.map((e) => [e.status, e.value])).toEqual([
      ['firing', 151],
      ['resolved', 140],
    ]);
    expect(events[1]).toMatchObject({ firedAt: 1000, at: 5000 });
  });

  it('waits `resolveFor` on the safe side, restarting the wait when the value climbs back', () => {
    const { run } = engineFor({ threshold: 150, resolve: 140, resolveFor: '2s', window: '1s' });
    expect(run([200, 100, 100, 145, 100, 100, 100])).toEqual(['firing', 'firing', 'firing', 'firing', 'firing', 'firing', 'inactive']);
  });

  it('supports "below" rules and treats a signal without data as safe', () => {
    const { rules } = buildAlertConfig({ defaults: false, rules: [{ name: 'low', signal: 'open_files', op: '<', threshold: 10, resolve: 20 }] }, 'test');
    const engine = new AlertEngine(rules);
    const counters = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Snapshot['counters'];
    const snap = (t: number, open?: number): Snapshot => ({ t, gauges: open === undefined ? {} : { open_files: open }, counters, histograms: { delivery_latency: [], change_feed_lag: [] } });
    const at = (s: Snapshot) => ({ window: () => [s] });
    engine.evaluate(at(snap(1, 5)), 1);
    expect(engine.isFiring('low')).toBe(true);
    engine.evaluate(at(snap(2, 15)), 2);
    expect(engine.isFiring('low')).toBe(true);
    engine.evaluate(at(snap(3)), 3);
    expect(engine.isFiring('low')).toBe(false);
    expect(engine.recent().map((e) => e.status)).toEqual(['resolved', 'firing']);
  });
});
