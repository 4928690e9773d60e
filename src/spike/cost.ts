// Monthly cost at a given number of concurrent users: Supabase Realtime on its published
// pricing (reference/supabase-realtime-protocol.md §8.3) beside self-hosting Fanout on
// the per-instance capacity this spike measured. Every input that is not measured is an
// assumption, listed in the report and overridable from the command line.

/** Supabase Realtime billing (Pro/Team), from the docs quoted in §8.3. */
export const SUPABASE_PRICING = {
  includedPeakConnections: 500,
  usdPer1000PeakConnections: 10,
  includedMessages: 5_000_000,
  usdPerMillionMessages: 2.5,
  /** Concurrent-connection quota of Pro without spend cap and Team; above it, Enterprise (custom). */
  connectionQuota: 10_000,
  /** Messages per second quota of Pro without spend cap and Team. */
  messagesPerSecondQuota: 2500,
} as const;

export interface CostInputs {
  users: number;
  /** Hours per month a user is connected (default 8 h × 22 working days). */
  activeHoursPerMonth: number;
  /** Measured: Realtime messages one user receives per second (broadcast, presence, comment changes). */
  realtimeReceivedPerUserPerSec: number;
  /** Measured: Realtime messages one user sends per second (broadcast, presence). */
  realtimeSentPerUserPerSec: number;
  /** Progress events per user per second (the seed's messageFrequency in the SSE runs). */
  progressPerUserPerSec: number;
  /** Users one Fanout instance serves (from the ramps' operating limits); null if unknown. */
  usersPerInstance: number | null;
  /** Whether that capacity is measured, or only a lower bound (then instances and cost are upper bounds). */
  capacityIsLowerBound?: boolean;
  supabaseBaseUsd: number;
  vmUsd: number;
  busUsd: number;
  /** Extra instances for failover. */
  spareInstances: number;
}

export const DEFAULT_COST_ASSUMPTIONS = { users: 1000, activeHoursPerMonth: 176, supabaseBaseUsd: 25, vmUsd: 24, busUsd: 15, spareInstances: 1 } as const;

export interface CostResult {
  users: number;
  assumptions: string[];
  supabase: { lines: { item: string; quantity: string; monthlyUsd: number }[]; monthlyUsd: number };
  selfHosted: { lines: { item: string; quantity: string; monthlyUsd: number }[]; monthlyUsd: number; instances: number; sizing: 'measured' | 'at-most' | 'unknown' };
  inputs: Record<string, number>;
}

const round2 = (v: number): number => Math.round(v * 100) / 100;
const fmtInt = (v: number): string => Math.round(v).toLocaleString('en-US');

/**
 * Supabase counts a broadcast as 1 (sent) + 1 per receiving client and a database change
 * once per receiving client. Each received message is counted once; each sent message
 * once more. Progress events, which Supabase would carry as REST broadcasts to one
 * subscriber, count 2 each (sent + received).
 */
export function monthlyMessages(i: CostInputs): number {
  const perUserPerSec = i.realtimeReceivedPerUserPerSec + i.realtimeSentPerUserPerSec + 2 * i.progressPerUserPerSec;
  return perUserPerSec * i.users * i.activeHoursPerMonth * 3600;
}

export function projectCost(i: CostInputs): CostResult {
  const p = SUPABASE_PRICING;
  const messages = monthlyMessages(i);
  const extraConnPackages = Math.max(0, Math.ceil((i.users - p.includedPeakConnections) / 1000));
  const extraMsgPackages = Math.max(0, Math.ceil((messages - p.includedMessages) / 1_000_000));
  const peakMsgPerSec = (i.realtimeReceivedPerUserPerSec + i.realtimeSentPerUserPerSec + 2 * i.progressPerUserPerSec) * i.users;
  const supabaseLines = [
    { item: 'Pro plan base fee (assumption: published list price; includes the database)', quantity: '1', monthlyUsd: i.supabaseBaseUsd },
    { item: `peak connections over ${p.includedPeakConnections} included, $${p.usdPer1000PeakConnections} per 1,000`, quantity: `${fmtInt(i.users)} peak → ${extraConnPackages} × 1,000`, monthlyUsd: extraConnPackages * p.usdPer1000PeakConnections },
    { item: `messages over ${fmtInt(p.includedMessages)} included, $${p.usdPerMillionMessages} per million`, quantity: `${fmtInt(messages)} → ${extraMsgPackages} × 1M`, monthlyUsd: extraMsgPackages * p.usdPerMillionMessages },
  ];
  const assumptions = [
    `${fmtInt(i.users)} users connected at peak, each with one Realtime socket and one progress stream; connected ${i.activeHoursPerMonth} h per month.`,
    `Per user, the spike's load model (continuous, so an upper bound for typical use): ${round2(i.realtimeReceivedPerUserPerSec)} Realtime messages received/s and ${round2(i.realtimeSentPerUserPerSec)} sent/s measured in the Realtime 10 × 10 run; ${round2(i.progressPerUserPerSec)} progress events/s (on Supabase these would be broadcasts, 2 billed messages each). Set --cost-progress-rate and --cost-realtime-rate to your own traffic.`,
    `Supabase: Pro/Team pricing from the docs (§8.3 of the protocol reference); base fee $${i.supabaseBaseUsd}/month is an assumption (the published Pro list price, not in the reference) — set --supabase-base-usd. Egress and database compute are not included in either column.`,
    `Self-hosting: $${i.vmUsd}/month per instance (assumption: a 2 vCPU / 4 GB VM like the machine measured here — set --vm-usd), ${i.spareInstances} spare instance(s) for failover, $${i.busUsd}/month for a managed Redis/NATS bus when there is more than one instance (--bus-usd); operating effort is not priced.`,
  ];
  if (i.users > p.connectionQuota) assumptions.push(`${fmtInt(i.users)} concurrent connections exceed Supabase Pro/Team's ${fmtInt(p.connectionQuota)} quota: that requires Enterprise (custom pricing); the Supabase column is a lower bound.`);
  if (peakMsgPerSec > p.messagesPerSecondQuota) assumptions.push(`${fmtInt(peakMsgPerSec)} messages/s at peak exceed Supabase Pro/Team's ${fmtInt(p.messagesPerSecondQuota)} messages/s quota.`);

  let instances = 0;
  const selfLines: { item: string; quantity: string; monthlyUsd: number }[] = [];
  let sizing: CostResult['selfHosted']['sizing'] = 'unknown';
  if (i.usersPerInstance && i.usersPerInstance > 0) {
    const needed = Math.max(1, Math.ceil(i.users / i.usersPerInstance));
    instances = needed + i.spareInstances;
    sizing = i.capacityIsLowerBound ? 'at-most' : 'measured';
    const each = i.capacityIsLowerBound ? `at least ${fmtInt(i.usersPerInstance)} users each — a lower bound, so at most this many` : `${fmtInt(i.usersPerInstance)} users each, measured`;
    selfLines.push({ item: `gateway instances (${each}) + ${i.spareInstances} spare`, quantity: `${i.capacityIsLowerBound ? '≤ ' : ''}${needed} + ${i.spareInstances}`, monthlyUsd: instances * i.vmUsd });
    if (instances > 1) selfLines.push({ item: 'message bus (Redis or NATS) shared by the instances', quantity: '1', monthlyUsd: i.busUsd });
    if (i.capacityIsLowerBound) assumptions.push(`The per-instance capacity is a LOWER BOUND (a ramp ended before the gateway degraded), so the self-hosted column is an upper bound: at most ${instances} instances and $${round2(selfLines.reduce((a, l) => a + l.monthlyUsd, 0))}/month. Rerun the spike with more generator capacity (--agents) to know the exact figure.`);
  } else {
    assumptions.push('Per-instance capacity was not measured (no passing ramp step), so the self-hosted column is not computed.');
  }
  return {
    users: i.users,
    assumptions,
    supabase: { lines: supabaseLines, monthlyUsd: round2(supabaseLines.reduce((a, l) => a + l.monthlyUsd, 0)) },
    selfHosted: { lines: selfLines, monthlyUsd: round2(selfLines.reduce((a, l) => a + l.monthlyUsd, 0)), instances, sizing },
    inputs: { ...i, usersPerInstance: i.usersPerInstance ?? 0, capacityIsLowerBound: i.capacityIsLowerBound ? 1 : 0, monthlyMessages: Math.round(messages), peakMessagesPerSec: round2(peakMsgPerSec) },
  };
}
