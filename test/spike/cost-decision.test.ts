// The cost projection and the decision rules on known inputs.
import { describe, expect, it } from 'vitest';
import { monthlyMessages, projectCost, type CostInputs } from '../../src/spike/cost.js';
import { decide, withinInterferenceBudget, type SpikeFacts } from '../../src/spike/decision.js';

const inputs = (over: Partial<CostInputs> = {}): CostInputs => ({
  users: 1000,
  activeHoursPerMonth: 100,
  realtimeReceivedPerUserPerSec: 1,
  realtimeSentPerUserPerSec: 0.1,
  progressPerUserPerSec: 0,
  usersPerInstance: 4000,
  supabaseBaseUsd: 25,
  vmUsd: 24,
  busUsd: 15,
  spareInstances: 1,
  ...over,
});

describe('cost projection', () => {
  it('counts messages as Supabase bills them', () => {
    // (1 + 0.1 + 2×0.5) msg/s × 1000 users × 100 h × 3600 s
    expect(monthlyMessages(inputs({ progressPerUserPerSec: 0.5 }))).toBeCloseTo(2.1 * 1000 * 360_000, 3);
  });

  it('prices connections and messages in whole packages over the included amounts', () => {
    const c = projectCost(inputs());
    // 1000 peak → 500 over → 1 package of 1000 = $10; 396M messages → 391 packages of 1M = $977.50.
    expect(c.supabase.lines.map((l) => l.monthlyUsd)).toEqual([25, 10, 977.5]);
    expect(c.supabase.monthlyUsd).toBe(1012.5);
    // 1000 users at 4000 per instance → 1 instance + 1 spare, plus the bus.
    expect(c.selfHosted.instances).toBe(2);
    expect(c.selfHosted.monthlyUsd).toBe(2 * 24 + 15);
  });

  it('states quota breaches and missing capacity instead of pricing them silently', () => {
    const big = projectCost(inputs({ users: 20_000 }));
    expect(big.assumptions.join(' ')).toMatch(/exceed Supabase Pro\/Team's 10,000 quota/);
    expect(big.assumptions.join(' ')).toMatch(/messages\/s at peak exceed/);
    const none = projectCost(inputs({ usersPerInstance: null }));
    expect(none.selfHosted.lines).toEqual([]);
    expect(none.assumptions.join(' ')).toMatch(/not measured/);
    const small = projectCost(inputs({ users: 100, realtimeReceivedPerUserPerSec: 0.01, realtimeSentPerUserPerSec: 0 }));
    expect(small.supabase.monthlyUsd).toBe(25); // within the included quotas
    expect(small.selfHosted.lines).toHaveLength(2); // 1 + 1 spare behind a load balancer share a bus
    expect(projectCost(inputs({ users: 100, spareInstances: 0 })).selfHosted).toMatchObject({ instances: 1, monthlyUsd: 24 });
  });
});

const facts = (over: Partial<SpikeFacts> = {}): SpikeFacts => ({
  sseMatrix: [10, 25, 50, 100, 200].map((n) => ({ id: `sse-${n}`, connections: n, passed: true, p99: 5, stability: 99.99, failures: [] })),
  realtimeMatrix: [
    { id: 'rt-5x10', projects: 5, usersPerProject: 10, passed: true, presenceP99: 8, broadcastP99: 6, reliability: 100, failures: [] },
    { id: 'rt-20x5', projects: 20, usersPerProject: 5, passed: true, presenceP99: 7, broadcastP99: 6, reliability: 100, failures: [] },
  ],
  hybrid: { id: 'hybrid', passed: true, sseP99: 9, sseSoloP99: 5, realtimeP99: 12, realtimeSoloP99: 8 },
  fault: { unaffected: true, failedSubsystem: 'database', deliveredAfterRecovery: true },
  sseLastPass: 8000,
  sseFirstFail: 9000,
  realtimeLastPass: 2000,
  realtimeFirstFail: 3000,
  projectedUsers: 1000,
  reconnectsObserved: 0,
  invalidRuns: 0,
  ...over,
});

describe('decision rules', () => {
  it('interference budget: max(1.5× solo, solo + 50 ms)', () => {
    expect(withinInterferenceBudget(10, 60)).toBe(true);
    expect(withinInterferenceBudget(10, 61)).toBe(false);
    expect(withinInterferenceBudget(200, 300)).toBe(true);
    expect(withinInterferenceBudget(200, 301)).toBe(false);
    expect(withinInterferenceBudget(null, 5)).toBeNull();
  });

  it('all passing: SSE for progress, Realtime for collaboration, one process, one instance', () => {
    const d = decide(facts());
    expect(d.primary.map((p) => p.statement)).toEqual([
      expect.stringMatching(/^Use SSE for progress tracking .* up to 200 connections/),
      expect.stringMatching(/^Use the Supabase Realtime protocol/),
      expect.stringMatching(/^Run both in one gateway/),
    ]);
    // caps 5600 and 1400 → 1/(1/5600+1/1400) = 1120 users per instance ≥ 1000 users.
    expect(d.scaling[0]!.statement).toMatch(/5600 SSE connections and 1400 Realtime users/);
    expect(d.scaling[1]!.statement).toMatch(/^One instance serves the projected 1000 .*≈ 1120 users/);
    expect(d.fallbacks[1]!.statement).toMatch(/progress over SSE kept its solo figures/);
    for (const item of [...d.primary, ...d.scaling, ...d.fallbacks]) expect(item.rule.length).toBeGreaterThan(10);
  });

  it('failing SSE, interference and a degraded fault flip the corresponding statements', () => {
    const d = decide(
      facts({
        sseMatrix: [{ id: 'sse-200', connections: 200, passed: false, p99: 900, stability: 99.9, failures: ['sse.latency.p99 900 (needs < 500)'] }],
        hybrid: { id: 'hybrid', passed: true, sseP99: 300, sseSoloP99: 100, realtimeP99: 12, realtimeSoloP99: 8 },
        fault: { unaffected: false, failedSubsystem: 'database', deliveredAfterRecovery: null },
        projectedUsers: 5000,
      }),
    );
    expect(d.primary[0]!.statement).toMatch(/^Do not rely on SSE alone .* sse-200 failed/);
    expect(d.primary[0]!.evidence[0]).toMatch(/900/);
    expect(d.primary[2]!.statement).toMatch(/separate gateway processes: together they interfered/);
    expect(d.scaling[1]!.statement).toMatch(/^Scale horizontally: 5 instances for 5000/);
    expect(d.fallbacks[1]!.statement).toMatch(/^Isolate SSE from the database/);
  });

  it('shards channels when presence latency grows with channel size', () => {
    const d = decide(
      facts({
        realtimeMatrix: [
          { id: 'small', projects: 20, usersPerProject: 5, passed: true, presenceP99: 10, broadcastP99: 5, reliability: 100, failures: [] },
          { id: 'large', projects: 1, usersPerProject: 100, passed: true, presenceP99: 400, broadcastP99: 5, reliability: 100, failures: [] },
        ],
      }),
    );
    expect(d.scaling.find((s) => s.rule.startsWith('S4'))!.statement).toMatch(/^Keep channels small/);
  });

  it('scales the heaviest run down to the bandwidth budget (S5)', () => {
    const over = decide(facts({ bandwidth: { id: 'rt-presence-100', kbps: 3.73, usersPerChannel: 100, presenceIntervalS: 10, ratePerConnection: null } }));
    const s5 = over.scaling.find((s) => s.rule.startsWith('S5'))!;
    expect(s5.statement).toMatch(/rt-presence-100 needed 3\.73 KB\/s per connection, 3\.7× the seed's 1 KB\/s; to fit it, presence updates every 38 s instead of 10 s in 100-user channels/);
    const sse = decide(facts({ bandwidth: { id: 'sse-10', kbps: 2, usersPerChannel: null, presenceIntervalS: null, ratePerConnection: 4 } }));
    expect(sse.scaling.find((s) => s.rule.startsWith('S5'))!.statement).toMatch(/at most 2 progress events\/s per stream/);
    const fine = decide(facts({ bandwidth: { id: 'rt-10x10', kbps: 0.4, usersPerChannel: 10, presenceIntervalS: 10, ratePerConnection: null } }));
    expect(fine.scaling.find((s) => s.rule.startsWith('S5'))!.statement).toMatch(/^Bandwidth fits the seed's budget/);
  });

  it('calls a cap from a ramp that never failed a lower bound', () => {
    const d = decide(facts({ sseFirstFail: null, sseStoppedBy: 'generator-limit' }));
    expect(d.scaling[0]!.statement).toMatch(/the SSE cap is a lower bound: its ramp stopped when the generator/);
    expect(decide(facts()).scaling[0]!.statement).not.toMatch(/lower bound/);
  });

  it('says capacity is unknown when a ramp produced no passing step', () => {
    const d = decide(facts({ realtimeLastPass: null }));
    expect(d.scaling[1]!.statement).toMatch(/unknown/);
  });
});
