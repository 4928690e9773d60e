// What the generator itself costs, so its capacity is known before a run: CPU per
// connection opened and per message received, measured from every run's per-second worker
// CPU and counters, and a preflight that predicts a planned run's CPU per worker from those
// costs (the previous run's, or defaults measured on a 2-vCPU machine) — too much, and the
// run would measure the generator instead of the server.
import type { Bucket } from './aggregate.js';
import type { RunSpec } from './spec.js';

/** CPU (% of one core) a generator worker may use and still take receive times on time. */
export const GENERATOR_CPU_BUDGET_PCT = 50;
/** Below these, a worker's fixed work swamps what is being priced: the cost is not measured. */
export const MIN_MESSAGES_PER_SEC_PER_WORKER = 200;
export const MIN_CONNECTS_PER_WORKER = 50;

export interface GeneratorCost {
  /** CPU ms a worker spends opening one connection (TCP, HTTP or WebSocket upgrade, join), beyond its message work. */
  cpuMsPerConnect: number | null;
  /** CPU µs a worker spends per message received in steady state (idle upkeep — heartbeats, timers — included). */
  cpuUsPerMessage: number | null;
}

export interface GeneratorCapacity {
  /** Connections one worker can open per second within the CPU budget. */
  connectsPerSecPerWorker: number | null;
  /** Messages one worker can receive per second within the CPU budget. */
  messagesPerSecPerWorker: number | null;
  budgetPct: number;
}

/**
 * Defaults until a run has measured its own: SSE streams and raw-Phoenix Realtime users on
 * this project's 2-vCPU development machine, shared with other work, so on the high side (a
 * Realtime message is a Phoenix frame decoded, plus presence and heartbeat work; an SSE
 * event is parsed from a chunk).
 */
export const DEFAULT_GENERATOR_COST: Record<'sse' | 'realtime', Required<{ [K in keyof GeneratorCost]: number }>> = {
  sse: { cpuMsPerConnect: 0.6, cpuUsPerMessage: 50 },
  realtime: { cpuMsPerConnect: 1.5, cpuUsPerMessage: 200 },
};

const round = (v: number, d = 3): number => Math.round(v * 10 ** d) / 10 ** d;

/** Worker CPU ms in a bucket (the coordinator, index −1, is not a worker). */
function workerCpuMs(b: Bucket, tickMs: number): number {
  let ms = 0;
  for (const [w, pct] of b.workerCpu) if (w >= 0) ms += (pct / 100) * tickMs;
  return ms;
}

const messagesOf = (b: Bucket): number => (b.counters.get('sse.messages') ?? 0) + (b.counters.get('realtime.frames') ?? 0);
const connectsOf = (b: Bucket): number => (b.counters.get('sse.connect.ok') ?? 0) + (b.counters.get('realtime.connect.ok') ?? 0);

/**
 * Cost from a run: steady buckets give CPU per message; the buckets while connections
 * opened give CPU per connect once their messages' share is taken out (without a steady
 * second to price messages, the per-connect figure keeps them: an upper bound).
 */
export function measureCost(connecting: readonly Bucket[], steady: readonly Bucket[], tickMs: number): GeneratorCost {
  const workers = Math.max(1, ...[...connecting, ...steady].map((b) => [...b.workerCpu.keys()].filter((w) => w >= 0).length));
  const steadyCpu = steady.reduce((a, b) => a + workerCpuMs(b, tickMs), 0);
  const steadyMessages = steady.reduce((a, b) => a + messagesOf(b), 0);
  // A worker's fixed work (its lag probe, ticks, timers) is about 1% of a core: below a few
  // hundred messages/s it would be priced as message work, so the cost is not measured.
  const perWorkerRate = steady.length ? steadyMessages / steady.length / workers : 0;
  const perMessageMs = perWorkerRate >= MIN_MESSAGES_PER_SEC_PER_WORKER ? steadyCpu / steadyMessages : null;
  const connects = connecting.reduce((a, b) => a + connectsOf(b), 0);
  const connectingCpu = connecting.reduce((a, b) => a + workerCpuMs(b, tickMs), 0);
  const connectingMessages = connecting.reduce((a, b) => a + messagesOf(b), 0);
  const perConnect = connects / workers >= MIN_CONNECTS_PER_WORKER ? Math.max(0, connectingCpu - connectingMessages * (perMessageMs ?? 0)) / connects : null;
  return { cpuMsPerConnect: perConnect === null ? null : round(perConnect, 3), cpuUsPerMessage: perMessageMs === null ? null : round(perMessageMs * 1000, 1) };
}

export function capacityOf(cost: GeneratorCost, budgetPct = GENERATOR_CPU_BUDGET_PCT): GeneratorCapacity {
  const budgetMs = budgetPct * 10; // ms of CPU per second
  return {
    connectsPerSecPerWorker: cost.cpuMsPerConnect ? Math.floor(budgetMs / cost.cpuMsPerConnect) : null,
    messagesPerSecPerWorker: cost.cpuUsPerMessage ? Math.floor((budgetMs * 1000) / cost.cpuUsPerMessage) : null,
    budgetPct,
  };
}

/** Messages per second the generator will receive in steady state for a planned run. */
export function expectedMessagesPerSec(spec: Pick<RunSpec, 'sse' | 'realtime'>): { sse: number; realtime: number } {
  const sse = spec.sse ? spec.sse.connections * spec.sse.ratePerStream : 0;
  let realtime = 0;
  const r = spec.realtime;
  if (r) {
    const n = r.usersPerProject;
    // Every member receives every member's presence diff, every other member's document
    // broadcast, and every comment change of its project.
    const presence = r.presence && r.presenceIntervalMs > 0 ? (n * n * 1000) / r.presenceIntervalMs : 0;
    realtime = r.projects * (presence + r.docRate * (n - 1) + r.commentRate * n);
  }
  return { sse, realtime };
}

export interface LoadForecast {
  /** Predicted CPU (% of one core) per worker while connections open, and in steady state. */
  connectingCpuPct: number;
  steadyCpuPct: number;
  /** Connection openings per second per worker that keep the connecting phase within budget. */
  paceConnectsPerSec: number | null;
  notes: string[];
}

/**
 * Predicts a run's CPU per worker from generator costs (measured, or the defaults), and
 * says what would keep it within budget: a longer ramp (pacing) for the connecting phase;
 * more generator processes or agents for the steady state, which pacing cannot fix.
 */
export function forecast(spec: Pick<RunSpec, 'sse' | 'realtime' | 'rampMs'>, workers: number, costs: Partial<Record<'sse' | 'realtime', GeneratorCost>> = {}, budgetPct = GENERATOR_CPU_BUDGET_PCT): LoadForecast {
  const cost = (g: 'sse' | 'realtime'): Required<{ [K in keyof GeneratorCost]: number }> => ({
    cpuMsPerConnect: costs[g]?.cpuMsPerConnect ?? DEFAULT_GENERATOR_COST[g].cpuMsPerConnect,
    cpuUsPerMessage: costs[g]?.cpuUsPerMessage ?? DEFAULT_GENERATOR_COST[g].cpuUsPerMessage,
  });
  const w = Math.max(1, workers);
  const msgs = expectedMessagesPerSec(spec);
  const sseConns = spec.sse?.connections ?? 0;
  const rtConns = spec.realtime ? spec.realtime.projects * spec.realtime.usersPerProject : 0;
  const steadyMsPerSec = (msgs.sse * cost('sse').cpuUsPerMessage + msgs.realtime * cost('realtime').cpuUsPerMessage) / 1000 / w;
  const connectMs = (sseConns * cost('sse').cpuMsPerConnect + rtConns * cost('realtime').cpuMsPerConnect) / w;
  const rampS = Math.max(0.001, spec.rampMs / 1000);
  const connectingCpuPct = round((connectMs / rampS + steadyMsPerSec) / 10, 1);
  const steadyCpuPct = round(steadyMsPerSec / 10, 1);
  const perConnect = sseConns + rtConns > 0 ? connectMs / ((sseConns + rtConns) / w) : 0;
  const spare = budgetPct * 10 - steadyMsPerSec;
  const paceConnectsPerSec = perConnect > 0 && spare > 0 ? Math.floor(spare / perConnect) * w : null;
  const notes: string[] = [];
  if (steadyCpuPct > budgetPct)
    notes.push(`preflight: receiving about ${Math.round(msgs.sse + msgs.realtime)} messages/s will take about ${steadyCpuPct}% of a core in each of ${w} generator process(es) (budget ${budgetPct}%): expect an INVALID run; add generator processes (--workers) on free cores or machines (--agents)`);
  else if (connectingCpuPct > budgetPct)
    notes.push(`preflight: opening ${sseConns + rtConns} connections in ${round(rampS, 1)} s will take about ${connectingCpuPct}% of a core in each of ${w} generator process(es) (budget ${budgetPct}%): pace the openings (at most ${paceConnectsPerSec ?? '?'} per second, i.e. --ramp ≥ ${paceConnectsPerSec ? Math.ceil((sseConns + rtConns) / paceConnectsPerSec) : '?'} s) or add generator processes`);
  return { connectingCpuPct, steadyCpuPct, paceConnectsPerSec, notes };
}
