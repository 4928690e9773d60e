// Whether the generator kept up with the run it drove: event-loop lag while connections
// opened and after (each against its own limit), CPU per process, hosts that went away or
// lagged, and what a connection and a message cost it. A run whose generator fell behind is
// INVALID, with the reasons naming the process and host.
import { HistogramSet, summarize, type LatencySummary } from './histogram.js';
import { GENERATOR_LAG, SCHEDULE_LATENESS } from './recorder.js';
import { capacityOf, measureCost, type GeneratorCapacity, type GeneratorCost } from './generator-cost.js';
import { connectingLagLimit, type RunSpec } from './spec.js';
import { mean, round } from './numbers.js';
import type { Bucket } from './aggregate.js';
import type { HostInfo } from './pool.js';
import type { RunInputs } from './result.js';

/** Worker index the coordinator reports its own health under. */
export const COORDINATOR = -1;

export interface GeneratorResult {
  workers: number;
  /** Lag while connections were opening, and after (each phase judged against its own limit). */
  lagConnecting: LatencySummary;
  lagSteady: LatencySummary;
  /** What the generator spent per connection and per message in this run, and what one worker can therefore hold. */
  cost: GeneratorCost;
  capacity: GeneratorCapacity;
  /** Where the workers ran: this machine and/or agents, with each host's measured clock offset (corrected in every stamp) and the connections its workers held (sum of their peaks). */
  hosts: (HostInfo & { peakConnections: number })[];
  /** Event-loop lag of every generator process (workers and coordinator), merged. */
  lag: LatencySummary;
  /** How late open-loop actions (publishes, presence updates, broadcasts) ran. */
  scheduleLateness: LatencySummary;
  perWorkerCpuMeanPct: number[];
  coordinatorCpuMeanPct: number;
  cpuMaxPct: number;
  valid: boolean;
  reasons: string[];
  limits: RunSpec['generator'];
}

/** `worker 3 on agent 10.0.0.7:7100`, or `worker 3` when every worker is local. */
function whereIs(worker: number, hosts: readonly HostInfo[]): string {
  if (worker === COORDINATOR) return 'the coordinator';
  const h = hosts.find((x) => x.workers.includes(worker));
  return h && h.name !== 'local' ? `worker ${worker} on ${h.name}` : `worker ${worker}`;
}

/**
 * The generator's own health over the run, from the merged ticks split into the seconds
 * while connections opened and the steady ones after: a reason for every way it fell
 * behind (lag, CPU, lost or late hosts), each making the run INVALID.
 */
export function generatorResult(inputs: RunInputs, { connecting, steady }: { connecting: Bucket[]; steady: Bucket[] }): GeneratorResult {
  const { agg, spec } = inputs;
  const hosts = inputs.hosts ?? [{ name: 'local', workers: Array.from({ length: inputs.workers }, (_, i) => i), clockOffsetMs: 0, clockUncertaintyMs: 0, lost: null }];
  const lag = agg.total.summary(GENERATOR_LAG);
  const perWorker = [...agg.workerCpu.entries()]
    .filter(([w]) => w !== COORDINATOR)
    .sort((a, b) => a[0] - b[0])
    .map(([, xs]) => round(mean(xs) ?? 0, 1));
  const coordinator = round(mean(agg.workerCpu.get(COORDINATOR) ?? []) ?? 0, 1);
  const cpuMax = Math.max(coordinator, ...perWorker, 0);
  const reasons: string[] = [...(inputs.hostProblems ?? [])];
  // Lag inflates what is measured while it happens: connect and subscribe times while
  // connections open, delivery latency after. Each phase is judged against 10% of its figures' budget.
  const phaseLag = (buckets: readonly Bucket[]): LatencySummary => {
    const set = new HistogramSet();
    for (const b of buckets) set.get(GENERATOR_LAG).add(b.histograms.get(GENERATOR_LAG));
    return set.summary(GENERATOR_LAG);
  };
  const lagConnecting = phaseLag(connecting);
  const lagSteady = phaseLag(steady);
  // Every generator process over the limit, worst first: the reason says where the lag was (which worker, on which host).
  const laggards = (limit: number): string => {
    const over = [...agg.workerLag.entries()]
      .map(([w, h]) => ({ w, p99: summarize(h).p99 ?? 0 }))
      .filter((x) => x.p99 > limit)
      .sort((a, b) => b.p99 - a.p99);
    if (!over.length) return '';
    const named = over.slice(0, 4).map((x) => `${whereIs(x.w, hosts)} p99 ${x.p99} ms`);
    return ` (over the run: ${named.join(', ')}${over.length > 4 ? `, and ${over.length - 4} more` : ''})`;
  };
  // A run too short to have a steady part measured everything while connecting: the strict limit applies.
  const connectingLimit = steady.length ? connectingLagLimit(spec.generator) : spec.generator.maxLagMs;
  if (lagSteady.p99 !== null && lagSteady.p99 > spec.generator.maxLagMs)
    reasons.push(`generator event-loop lag p99 ${lagSteady.p99} ms in steady state exceeds ${spec.generator.maxLagMs} ms${laggards(spec.generator.maxLagMs)}: receive times were taken late, delivery latencies are inflated by the generator`);
  if (lagConnecting.p99 !== null && lagConnecting.p99 > connectingLimit)
    reasons.push(`generator event-loop lag p99 ${lagConnecting.p99} ms while connections opened exceeds ${connectingLimit} ms${laggards(connectingLimit)}: connect and subscribe times are inflated by the generator (pace the openings: a longer --ramp)`);
  // No per-second data at all (a run stopped at once): judge what there is.
  if (!connecting.length && !steady.length && lag.p99 !== null && lag.p99 > spec.generator.maxLagMs)
    reasons.push(`generator event-loop lag p99 ${lag.p99} ms exceeds ${spec.generator.maxLagMs} ms${laggards(spec.generator.maxLagMs)}`);
  if (cpuMax > spec.generator.maxCpuPct) {
    const worstCpu = [...agg.workerCpu.entries()].map(([w, xs]) => ({ w, cpu: round(mean(xs) ?? 0, 1) })).sort((a, b) => b.cpu - a.cpu)[0];
    reasons.push(`a generator process (${worstCpu ? whereIs(worstCpu.w, hosts) : 'unknown'}) averaged ${cpuMax}% CPU (limit ${spec.generator.maxCpuPct}%): the generator, not the server, was the bottleneck`);
  }
  const hostsOut = hosts.map((h) => ({ ...h, peakConnections: h.workers.reduce((a, w) => a + (agg.peakOpenByWorker.get(w) ?? 0), 0) }));
  const cost = measureCost(connecting, steady, inputs.tickMs ?? 1000);
  return { workers: inputs.workers, lagConnecting, lagSteady, cost, capacity: capacityOf(cost), hosts: hostsOut, lag, scheduleLateness: agg.total.summary(SCHEDULE_LATENESS), perWorkerCpuMeanPct: perWorker, coordinatorCpuMeanPct: coordinator, cpuMaxPct: cpuMax, valid: reasons.length === 0, reasons, limits: spec.generator };
}
