// The spike report's data model: what report.json holds and report.md / report.html
// render. Every figure carries the scenario (or rule) it came from, so a reader can
// trace each number in ScalabilityLimits and PerformanceBenchmarks back to a run.
import type { RunResult } from '../load/result.js';
import type { StepVerdict } from './degradation.js';

export type ScenarioCategory = 'sse' | 'realtime' | 'hybrid' | 'fault' | 'ramp-sse' | 'ramp-realtime' | 'soak';

export interface ScenarioRecord {
  id: string;
  title: string;
  category: ScenarioCategory;
  /** Set on a repetition of a baseline scenario (`sse-100#2` repeats `sse-100`), run to measure run-to-run noise. */
  repeatOf?: string;
  /** The seed checklist item this scenario answers. */
  seedItem?: string;
  /** Connections (SSE) or users (Realtime) under load. */
  load: number;
  result: RunResult;
}

/**
 * How strong a figure is: `measured` (a degradation bracketed between a passing and a
 * failing valid step, or a value read from valid runs), `lower-bound` (the true value is at
 * least this: the ramp ended without degrading, or the next step was INVALID), or
 * `not-measured`. Nothing is sized or priced from a lower bound as if it were measured.
 */
export type Strength = 'measured' | 'lower-bound' | 'not-measured';

/** A measured figure and where it comes from. */
export interface Figure {
  value: number | null;
  unit: string;
  basis: string;
  /** Absent: measured when value is set (older figures: read straight from a run). */
  strength?: Strength;
  /** For a degradation point: the highest passing and the lowest failing load. */
  bracket?: [number, number];
}

export interface Benchmark extends Figure {
  /** The seed's target, e.g. "< 500 ms". */
  target: string;
  pass: boolean | null;
}

export interface DegradationRecord {
  transport: 'sse' | 'realtime';
  unit: string;
  criteria: string[];
  steps: { load: number; scenarioId: string; verdict: StepVerdict; failures: string[]; p99Ms: number | null; connectP99Ms: number | null }[];
  lastPass: number | null;
  firstFail: number | null;
  stoppedBy: string;
  max: number;
  /** measured: bracketed [lastPass, firstFail] after bisection; lower-bound: ≥ lastPass; not-measured: no step passed. */
  strength: Strength;
  /** One sentence: what the ramp found and why it is that strong. */
  finding: string;
  /** Connections opened per second during each step (paced), and how long each step held its load. */
  openRate: number;
  holdMs: number;
  /** What the generator cost in the last valid step, and how big it was: what measuring further would take. */
  generator: { workers: number; hosts: number; cpuMsPerConnect: number | null; cpuUsPerMessage: number | null; messagesPerSecPerConnection: number | null } | null;
}

/** A figure's spread over repeated runs of one scenario: the run-to-run noise comparisons are judged against. */
export interface Spread {
  scenario: string;
  figure: string;
  values: number[];
  median: number | null;
  /** max − min over the runs; null with fewer than two runs (noise unknown). */
  spread: number | null;
}

export interface ScalabilityLimits {
  sse: { maxConcurrentConnections: Figure; recommendedLimit: Figure; performanceDegradationPoint: Figure };
  /** The seed's three fields, plus the Realtime ramp's degradation point and operating limit (users per instance). */
  supabaseRealtime: { maxChannels: Figure; maxUsersPerChannel: Figure; recommendedChannelSize: Figure; performanceDegradationPoint: Figure; recommendedLimit: Figure };
  hybrid: {
    maxTotalConnections: Figure;
    resourceUsageProfile: {
      sseMemoryPerConnectionKb: Figure;
      realtimeMemoryPerConnectionKb: Figure;
      cpuPer100SseConnectionsPct: Figure;
      cpuPer100RealtimeConnectionsPct: Figure;
      baseRssMb: Figure;
      /** At the seed's own SSE workload (its messageFrequency, 1 message/s per connection). */
      bandwidthPerConnectionKBps: Figure;
      /** Bytes on the wire per delivered SSE event, and the payload it carried. */
      sseWireBytesPerMessage: Figure;
      ssePayloadBytesPerMessage: Figure;
      /** The heaviest Realtime run (presence fan-out grows with the channel): informative, not the seed's benchmark. */
      realtimeBandwidthPerConnectionKBps: Figure;
      realtimeWireBytesPerMessage: Figure;
    };
    scalingStrategy: string;
  };
}

export interface PerformanceBenchmarks {
  sse: { connectionEstablishmentTime: Benchmark; messageDeliveryLatency: Benchmark; connectionStability: Benchmark };
  supabaseRealtime: { presenceUpdateLatency: Benchmark; messageDeliveryReliability: Benchmark; channelSubscriptionTime: Benchmark };
  resourceUsage: { memoryPerConnection: Benchmark; cpuUsageIncrease: Benchmark; networkBandwidth: Benchmark };
}

export interface FaultComparison {
  scenarioId: string;
  soloScenarioId: string;
  failedSubsystem: string;
  method: string;
  /** The side that kept running, during the fault versus alone. */
  survivor: 'sse';
  /** `cannot tell`: over the budget but within the solo run's run-to-run spread, or no spread measured. */
  rows: { metric: string; solo: number | null; duringFault: number | null; verdict: 'unaffected' | 'degraded' | 'cannot tell'; why?: string }[];
  unaffected: boolean;
  /** Both the fault run and the solo run were valid (the generator kept up); otherwise the comparison is not evidence. */
  valid: boolean;
  /** What happened to the failed side (errors, recovery). */
  failedSide: { errorsDuringFault: Record<string, number>; commentsPublished: number; commentsFailed: number; deliveredAfterRecovery: boolean | null; notes: string[] };
}

export interface DecisionItem {
  /** The conclusion, stated for a reader. */
  statement: string;
  /** The rule that produced it, in words. */
  rule: string;
  /** The measured facts it rests on. */
  evidence: string[];
}

export interface ArchitectureDecision {
  primary: DecisionItem[];
  scaling: DecisionItem[];
  fallbacks: DecisionItem[];
}

export interface CostLine {
  item: string;
  quantity: string;
  monthlyUsd: number;
}

export interface CostProjection {
  users: number;
  assumptions: string[];
  supabase: { lines: CostLine[]; monthlyUsd: number };
  /** `at-most`: sized from a capacity that is a lower bound, so at most this many instances and dollars; `unknown`: not computed. */
  selfHosted: { lines: CostLine[]; monthlyUsd: number; instances: number; sizing: 'measured' | 'at-most' | 'unknown' };
  inputs: Record<string, number>;
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  platform: string;
  loadAverage: number[];
}

export interface SpikeReport {
  version: 2;
  generatedAt: string;
  mode: string;
  wallClockS: number;
  machine: MachineInfo;
  target: { kind: string; url: string; embedded: boolean; database: string };
  scenarios: ScenarioRecord[];
  fault: FaultComparison | { skipped: string };
  degradation: { sse?: DegradationRecord; realtime?: DegradationRecord };
  limits: ScalabilityLimits;
  benchmarks: PerformanceBenchmarks;
  decision: ArchitectureDecision;
  cost: CostProjection;
  /** Run-to-run spread of the figures the comparison rules use, from repeated baseline runs. */
  noise: Spread[];
  /** Where the load came from: agents (host:port) and local worker processes. */
  generator?: { agents: string[]; localWorkers: number };
  invalidScenarios: string[];
  /** Runs that could not complete (a generator process stuck past its deadline), with why. */
  errors: { scenario: string; message: string }[];
  notes: string[];
}
