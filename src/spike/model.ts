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
  /** The seed checklist item this scenario answers. */
  seedItem?: string;
  /** Connections (SSE) or users (Realtime) under load. */
  load: number;
  result: RunResult;
}

/** A measured figure and where it comes from. */
export interface Figure {
  value: number | null;
  unit: string;
  basis: string;
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
      bandwidthPerConnectionKBps: Figure;
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
  rows: { metric: string; solo: number | null; duringFault: number | null; verdict: 'unaffected' | 'degraded' }[];
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
  selfHosted: { lines: CostLine[]; monthlyUsd: number; instances: number };
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
  version: 1;
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
  invalidScenarios: string[];
  /** Runs that could not complete (a generator process stuck past its deadline), with why. */
  errors: { scenario: string; message: string }[];
  notes: string[];
}
