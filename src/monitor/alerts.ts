// The alert engine: after every monitor sample it evaluates each rule's signal over the
// rule's window and moves the rule through inactive → pending → firing → inactive.
//
// Hysteresis, so a value hovering at the threshold does not flap:
// - a rule fires only after its condition has held continuously for `for`;
// - a firing rule resolves only when the value is back on the safe side of the
//   separate `resolve` level (e.g. fire above 150, resolve at or below 140), and has
//   stayed there for `resolveFor`. Between the two levels it keeps firing.
// A signal with no data in the window (no deliveries, so no latency) counts as safe.
import type { AlertRule, Comparison, Severity } from './alert-rules.js';
import { evaluateSignal, type SignalName, type Snapshot } from './signals.js';

export interface AlertEvent {
  /** Monotonic per gateway, so a client can tell which events it has seen. */
  seq: number;
  rule: string;
  status: 'firing' | 'resolved';
  severity: Severity;
  signal: SignalName;
  op: Comparison;
  threshold: number;
  resolve: number;
  /** The signal's value when the transition happened (undefined: no data, which is safe). */
  value: number | undefined;
  description: string;
  /** When the alert started firing (ms epoch). */
  firedAt: number;
  /** When this event happened (ms epoch): `firedAt` for firing, the resolution time for resolved. */
  at: number;
}

export interface ActiveAlert {
  rule: string;
  state: 'pending' | 'firing';
  severity: Severity;
  signal: SignalName;
  op: Comparison;
  threshold: number;
  resolve: number;
  value: number | undefined;
  description: string;
  /** When the condition started holding. */
  since: number;
  firedAt?: number;
}

interface RuleState {
  state: 'inactive' | 'pending' | 'firing';
  since: number;
  firedAt: number;
  /** When the value last moved to the safe side while firing (resolveFor timer). */
  clearSince: number | undefined;
  value: number | undefined;
}

export type AlertListener = (event: AlertEvent) => void;

/** Supplies the snapshots a window covers (the Sampler). */
export interface SnapshotWindow {
  window(ms: number): Snapshot[];
}

function holds(value: number, op: Comparison, level: number): boolean {
  switch (op) {
    case '>':
      return value > level;
    case '>=':
      return value >= level;
    case '<':
      return value < level;
    case '<=':
      return value <= level;
  }
}

export class AlertEngine {
  private readonly states = new Map<string, RuleState>();
  private readonly recentEvents: AlertEvent[] = [];
  private readonly listeners: AlertListener[] = [];
  private seq = 0;

  constructor(
    readonly rules: readonly AlertRule[],
    private readonly recentLimit = 100,
  ) {
    for (const rule of rules) this.states.set(rule.name, { state: 'inactive', since: 0, firedAt: 0, clearSince: undefined, value: undefined });
  }

  onEvent(listener: AlertListener): void {
    this.listeners.push(listener);
  }

  /** Evaluates every rule at time `now` (the latest snapshot's time). */
  evaluate(source: SnapshotWindow, now: number): AlertEvent[] {
    const events: AlertEvent[] = [];
    for (const rule of this.rules) {
      const st = this.states.get(rule.name)!;
      const value = evaluateSignal(rule.signal, source.window(rule.windowMs), rule.aggregate);
      st.value = value;
      const breached = value !== undefined && holds(value, rule.op, rule.threshold);
      const safe = value === undefined || !holds(value, rule.op, rule.resolve);
      if (st.state === 'inactive' && breached) {
        st.state = 'pending';
        st.since = now;
      }
      if (st.state === 'pending') {
        // A rule with `for: 0` fires on the very sample that breached it.
        if (!breached) {
          st.state = 'inactive';
        } else if (now - st.since >= rule.forMs) {
          st.state = 'firing';
          st.firedAt = now;
          st.clearSince = undefined;
          events.push(this.record(rule, 'firing', value, now, now));
        }
      } else if (st.state === 'firing') {
        if (!safe) {
          st.clearSince = undefined;
          continue;
        }
        st.clearSince ??= now;
        if (now - st.clearSince >= rule.resolveForMs) {
          st.state = 'inactive';
          events.push(this.record(rule, 'resolved', value, st.firedAt, now));
        }
      }
    }
    return events;
  }

  /** Firing and pending alerts, firing first. */
  active(): ActiveAlert[] {
    const out: ActiveAlert[] = [];
    for (const rule of this.rules) {
      const st = this.states.get(rule.name)!;
      if (st.state === 'inactive') continue;
      out.push({
        rule: rule.name,
        state: st.state,
        severity: rule.severity,
        signal: rule.signal,
        op: rule.op,
        threshold: rule.threshold,
        resolve: rule.resolve,
        value: st.value,
        description: rule.description,
        since: st.since,
        ...(st.state === 'firing' ? { firedAt: st.firedAt } : {}),
      });
    }
    return out.sort((a, b) => (a.state === b.state ? a.since - b.since : a.state === 'firing' ? -1 : 1));
  }

  /** Recent transitions, newest first. */
  recent(): AlertEvent[] {
    return [...this.recentEvents].reverse();
  }

  isFiring(rule: string): boolean {
    return this.states.get(rule)?.state === 'firing';
  }

  private record(rule: AlertRule, status: AlertEvent['status'], value: number | undefined, firedAt: number, at: number): AlertEvent {
    const event: AlertEvent = {
      seq: ++this.seq,
      rule: rule.name,
      status,
      severity: rule.severity,
      signal: rule.signal,
      op: rule.op,
      threshold: rule.threshold,
      resolve: rule.resolve,
      value,
      description: rule.description,
      firedAt,
      at,
    };
    this.recentEvents.push(event);
    if (this.recentEvents.length > this.recentLimit) this.recentEvents.shift();
    for (const listener of this.listeners) listener(event);
    return event;
  }
}
