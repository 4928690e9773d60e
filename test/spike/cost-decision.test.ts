// The cost projection and the decision rules on known inputs.
import { describe, expect, it } from 'vitest';
import { monthlyMessages, projectCost, type CostInputs } from '../../src/spike/cost.js';
import { decide, generatorNeeded, withinInterferenceBudget, type RampFacts, type SpikeFacts } from '../../src/spike/decision.js';
import { spreadOf } from '../../src/spike/noise.js';

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
    expect(projectCost(inputs({ users: 100, spareInstances: 0 })).selfHosted).toMatchObject({ instances: 1, monthlyUsd: 24, sizing: 'measured' });
  });

  it('sizes from a lower-bound capacity only as an upper bound: at most so many instances and dollars', () => {
    const c = projectCost(inputs({ users: 1000, usersPerInstance: 200, capacityIsLowerBound: true }));
    expect(c.selfHosted.sizing).toBe('at-most');
    expect(c.selfHosted.lines[0]!.item).toMatch(/at least 200 users each — a lower bound, so at most this many/);
    expect(c.selfHosted.lines[0]!.quantity).toBe('≤ 5 + 1');
    expect(c.assumptions.join(' ')).toMatch(/LOWER BOUND .* upper bound: at most 6 instances and \$159\/month\. Rerun the spike with more generator capacity \(--agents\)/);
    expect(c.assumptions.join(' ')).not.toMatch(/measured\)/);
  });
});

/** A ramp bracketed between a passing and a failing valid step. */
const measured = (lastPass: number, firstFail: number): RampFacts => ({ strength: 'measured', lastPass, firstFail, finding: `degrades between ${lastPass} (passed) and ${firstFail} (failed)`, stoppedBy: 'degradation-found', generator: { workers: 2, hosts: 1, cpuMsPerConnect: 0.3, cpuUsPerMessage: 30, messagesPerSecPerConnection: 1 } });
/** A ramp that ended without degrading (its next step INVALID). */
const lowerBound = (lastPass: number, invalidAt: number): RampFacts => ({ strength: 'lower-bound', lastPass, firstFail: null, finding: `≥ ${lastPass}: the next step (${invalidAt}) was INVALID — generator event-loop lag p99 128 ms`, stoppedBy: 'generator-limit', generator: { workers: 2, hosts: 1, cpuMsPerConnect: 0.3, cpuUsPerMessage: 30, messagesPerSecPerConnection: 1 } });
/** Three runs of a baseline figure. */
const runs = (scenario: string, ...values: number[]) => spreadOf(scenario, 'p99', values);

const facts = (over: Partial<SpikeFacts> = {}): SpikeFacts => ({
  sseMatrix: [10, 25, 50, 100, 200].map((n) => ({ id: `sse-${n}`, connections: n, passed: true, p99: 5, stability: 99.99, failures: [] })),
  realtimeMatrix: [
    { id: 'rt-5x10', projects: 5, usersPerProject: 10, passed: true, presenceP99: 8, broadcastP99: 6, reliability: 100, failures: [] },
    { id: 'rt-20x5', projects: 20, usersPerProject: 5, passed: true, presenceP99: 7, broadcastP99: 6, reliability: 100, failures: [] },
  ],
  hybrid: { id: 'hybrid', passed: true, sseP99: 9, sseSolo: runs('sse-100', 5, 6, 7), realtimeP99: 12, realtimeSolo: runs('rt-10x10', 8, 9, 11) },
  channels: [
    { id: 'rt-20x5', usersPerProject: 5, presence: runs('rt-20x5', 7, 9, 8) },
    { id: 'rt-presence-100', usersPerProject: 100, presence: runs('rt-presence-100', 22, 26, 24) },
  ],
  fault: { unaffected: true, failedSubsystem: 'database', deliveredAfterRecovery: true, why: [] },
  sse: measured(8000, 9000),
  realtime: measured(2000, 3000),
  projectedUsers: 1000,
  machineCpus: 2,
  reconnectsObserved: 0,
  invalidRuns: 0,
  ...over,
});

const rule = (d: ReturnType<typeof decide>, id: string) => [...d.primary, ...d.scaling, ...d.fallbacks].find((x) => x.rule.startsWith(id))!;

describe('decision rules', () => {
  it('interference budget: max(1.5× solo, solo + 50 ms)', () => {
    expect(withinInterferenceBudget(10, 60)).toBe(true);
    expect(withinInterferenceBudget(10, 61)).toBe(false);
    expect(withinInterferenceBudget(200, 300)).toBe(true);
    expect(withinInterferenceBudget(200, 301)).toBe(false);
    expect(withinInterferenceBudget(null, 5)).toBeNull();
  });

  it('all measured and passing: SSE for progress, Realtime for collaboration, one process, caps and one instance', () => {
    const d = decide(facts());
    expect(d.primary.map((p) => p.statement)).toEqual([
      expect.stringMatching(/^Use SSE for progress tracking .* up to 200 connections/),
      expect.stringMatching(/^Use the Supabase Realtime protocol/),
      expect.stringMatching(/^Run both in one gateway \(hybrid\)/),
    ]);
    // caps 5600 and 1400 → 1/(1/5600+1/1400) = 1120 users per instance ≥ 1000 users.
    expect(rule(d, 'S1').statement).toMatch(/^Cap each gateway instance at 5,600 SSE connections and 1,400 Realtime users/);
    expect(rule(d, 'S2').statement).toMatch(/^One instance serves the projected 1000 .*≈ 1,120 users/);
    expect(rule(d, 'F2').statement).toMatch(/progress over SSE kept its solo figures/);
    for (const item of [...d.primary, ...d.scaling, ...d.fallbacks]) expect(item.rule.length).toBeGreaterThan(10);
  });

  it('failing SSE, interference beyond noise and a degraded fault flip the corresponding statements', () => {
    const d = decide(
      facts({
        sseMatrix: [{ id: 'sse-200', connections: 200, passed: false, p99: 900, stability: 99.9, failures: ['sse.latency_e2e.p99 900 (needs < 500)'] }],
        hybrid: { id: 'hybrid', passed: true, sseP99: 300, sseSolo: runs('sse-100', 95, 100, 110), realtimeP99: 12, realtimeSolo: runs('rt-10x10', 8, 9, 10) },
        fault: { unaffected: false, failedSubsystem: 'database', deliveredAfterRecovery: null, why: [] },
        projectedUsers: 5000,
      }),
    );
    expect(d.primary[0]!.statement).toMatch(/^Do not rely on SSE alone .* sse-200 failed/);
    expect(d.primary[0]!.evidence[0]).toMatch(/900/);
    expect(rule(d, 'P3').statement).toMatch(/separate gateway processes: together, one slowed the other beyond the interference budget and beyond run-to-run noise/);
    expect(rule(d, 'S2').statement).toMatch(/^Scale horizontally: 5 instances for 5000/);
    expect(rule(d, 'F2').statement).toMatch(/^Isolate SSE from the database/);
  });

  it('P3 does not fire on a difference inside the spread, and says it cannot tell', () => {
    // 160 ms is over the budget around a 100 ms median (150), but the solo runs themselves ranged 60–180 ms.
    const inside = decide(facts({ hybrid: { id: 'hybrid', passed: true, sseP99: 160, sseSolo: runs('sse-100', 60, 100, 180), realtimeP99: 12, realtimeSolo: runs('rt-10x10', 8, 9, 10) } }));
    expect(rule(inside, 'P3').statement).toMatch(/^Run both in one gateway for now, but this spike cannot tell whether they interfere/);
    expect(rule(inside, 'P3').evidence[0]).toMatch(/cannot tell: .*within the run-to-run spread \(120 ms over 3 runs\)/);
    // The same 160 ms against tight solo runs (98–102 ms) is beyond the noise: it fires.
    const outside = decide(facts({ hybrid: { id: 'hybrid', passed: true, sseP99: 160, sseSolo: runs('sse-100', 98, 100, 102), realtimeP99: 12, realtimeSolo: runs('rt-10x10', 8, 9, 10) } }));
    expect(rule(outside, 'P3').statement).toMatch(/^Run SSE and Realtime in separate gateway processes/);
    // One solo run: the noise is unknown, so over the budget is not enough either.
    const once = decide(facts({ hybrid: { id: 'hybrid', passed: true, sseP99: 160, sseSolo: runs('sse-100', 100), realtimeP99: 12, realtimeSolo: runs('rt-10x10', 9) } }));
    expect(rule(once, 'P3').statement).toMatch(/cannot tell/);
    expect(rule(once, 'P3').evidence[0]).toMatch(/ran once, so its run-to-run noise is unknown/);
  });

  it('S4 does not shard on presence growing from 9 to 24 ms against a 1 s budget (the recorded quick run)', () => {
    const d = decide(facts());
    expect(rule(d, 'S4').statement).toMatch(/^One channel per project is fine up to 100 users: presence p99 8 ms at 5 users\/channel, 24 ms at 100, within half spike-003's 1 s budget/);
  });

  it('S4 shards only when the largest channel is material AND its growth is beyond the noise', () => {
    const slow = (values: number[]) => decide(facts({ channels: [{ id: 'rt-20x5', usersPerProject: 5, presence: runs('rt-20x5', 10, 12, 11) }, { id: 'rt-presence-100', usersPerProject: 100, presence: runs('rt-presence-100', ...values) }] }));
    expect(rule(slow([700, 720, 710]), 'S4').statement).toMatch(/^Keep channels small: .*710 ms at 100, beyond half spike-003's 1 s budget and beyond run-to-run noise/);
    // Over 500 ms at the median, but its own runs spread over 300–900 ms: cannot tell.
    expect(rule(slow([300, 600, 900]), 'S4').statement).toMatch(/cannot tell whether 100-user channels need sharding/);
  });

  it('sizes nothing from lower bounds: the recorded quick run (1,000 INVALID above 700; a ×4 jump) gives "at most" and how to measure', () => {
    const d = decide(facts({ sse: lowerBound(1000, 4000), realtime: measured(400, 1600), projectedUsers: 1000 }));
    const s1 = rule(d, 'S1').statement;
    expect(s1).toMatch(/^Per-instance operating limits .* SSE: at least 700 connections — a floor, not a cap \(≥ 1000: the next step \(4000\) was INVALID/);
    expect(s1).toMatch(/Realtime: 280 users \(70% of 400; degrades between 400 \(passed\) and 1600 \(failed\)\)/);
    expect(s1).not.toMatch(/^Cap each/);
    const s2 = rule(d, 'S2').statement;
    // 1/(1/700 + 1/280) = 200 users per instance at least → at most 5 instances.
    expect(s2).toMatch(/^At most 5 instances for 1000 concurrent users \(each holds at least ≈ 200 users/);
    expect(s2).toMatch(/To know: the SSE ramp ended when the generator could no longer vouch for its figures: to push it to 2,000, run about 1 generator worker process .* off the gateway's machine — 1 machine like this one \(2 CPUs\) running `fanout load agent --listen/);
    // A ramp that simply reached its largest step needs a longer ramp, not a bigger generator.
    const ceiling = decide(facts({ sse: { ...lowerBound(4000, 0), finding: '≥ 4,000: every step up to the ramp\'s largest passed', stoppedBy: 'max-reached' } }));
    expect(rule(ceiling, 'S2').statement).toMatch(/the SSE ramp ended at its largest step before the gateway degraded: rerun with a longer ramp \(the default profile/);
  });

  it('says capacity is unknown when a ramp produced no passing step', () => {
    const d = decide(facts({ realtime: { strength: 'not-measured', lastPass: null, firstFail: null, finding: 'not measured: the first step (100 users) was INVALID', stoppedBy: 'generator-limit', generator: null } }));
    expect(rule(d, 'S2').statement).toMatch(/unknown/);
  });

  it('F2 cannot tell when the fault run differs from solo only within the noise', () => {
    const d = decide(facts({ fault: { unaffected: null, failedSubsystem: 'database', deliveredAfterRecovery: true, why: ['SSE delivery p99 (ms): within the spread'] } }));
    expect(rule(d, 'F2').statement).toMatch(/^This spike cannot tell whether SSE noticed the database outage/);
  });

  it('scales the heaviest Realtime run down to the bandwidth budget (S5)', () => {
    const over = decide(facts({ bandwidth: { id: 'rt-presence-100', kbps: 3.73, usersPerChannel: 100, presenceIntervalS: 10, ratePerConnection: null } }));
    expect(rule(over, 'S5').statement).toMatch(/rt-presence-100 needed 3\.73 KB\/s per connection, 3\.7× spike-003's 1 KB\/s; to fit it, presence updates every 38 s instead of 10 s in 100-user channels/);
    const fine = decide(facts({ bandwidth: { id: 'rt-10x10', kbps: 0.4, usersPerChannel: 10, presenceIntervalS: 10, ratePerConnection: null } }));
    expect(rule(fine, 'S5').statement).toMatch(/^Bandwidth fits spike-003's budget/);
  });

  it('what it would take: generator workers from the measured cost, agents like this machine', () => {
    // 30 µs per message at 1 message/s per connection → 16,666 per worker within 50%; 18,000 sockets cap.
    expect(generatorNeeded(measured(8000, 9000), 40_000, 2)).toEqual({ workers: 3, agents: 3, perWorker: 16_666 });
    expect(generatorNeeded(measured(8000, 9000), 40_000, 8)).toEqual({ workers: 3, agents: 1, perWorker: 16_666 });
    expect(generatorNeeded({ ...measured(1, 2), generator: null }, 10, 2)).toBeNull();
  });
});
