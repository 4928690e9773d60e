// Turns what a run collected (merged histograms, counters, worker finals, server
// samples, publisher stats) into its result: per-transport figures, fan-out, server
// resources with memory per connection as a fitted slope, the generator's health and
// validity, a per-second timeline, and the flat metric map thresholds are judged on.
import { summarize, type HistogramSet, type LatencySummary } from './histogram.js';
import { addCounts, emptyCounts, type SequenceCounts } from './sequence.js';
import { FANOUT_COMPLETION, RunAggregator, type Bucket } from './aggregate.js';
import { GENERATOR_LAG } from './recorder.js';
import type { ClockEstimate } from './clock.js';
import { isLoopbackHost } from './target.js';
import { evaluateThresholds, thresholdsPassed, type ThresholdResult } from './thresholds.js';
import type { GroupName, WorkerFinal } from './plan.js';
import type { ServerSample } from './sampler.js';
import type { PublisherStats } from './publishers.js';
import type { HostInfo } from './pool.js';
import type { RunSpec } from './spec.js';
import { MB, mean, round } from './numbers.js';
import { serverResult, type ServerResult } from './server-resources.js';
import { generatorResult, type GeneratorResult } from './generator-health.js';
import { flattenMetrics } from './metric-map.js';

export type { GeneratorResult } from './generator-health.js';
export type { ServerResult } from './server-resources.js';

export interface DeliveryCounts extends SequenceCounts {
  /** unique / (unique + lost), in %; null when nothing was expected. */
  reliabilityPct: number | null;
}

export interface GroupResult {
  group: GroupName;
  planned: number;
  established: number;
  connectSuccessPct: number;
  connectAttempts: number;
  connectFailures: number;
  reconnects: number;
  drops: number;
  peakOpen: number;
  connect: LatencySummary;
  /** Realtime only: phx_join to its ok reply. */
  join: LatencySummary | null;
  /** Realtime only: from starting to connect until joined — what subscribe() → SUBSCRIBED takes in supabase-js (the seed's channelSubscriptionTime). */
  subscribe: LatencySummary | null;
  firstEvent: LatencySummary;
  latency: Record<string, LatencySummary>;
  delivery: Record<string, DeliveryCounts>;
  deliveryTotal: DeliveryCounts;
  messages: number;
  messagesPerSec: number;
  bytesIn: number;
  bytesOut: number;
  /** TCP bytes read (headers, framing, heartbeats included); 0 where the socket is not reachable (supabase-js). */
  wireBytesIn: number;
  /** Steady-state bytes on the wire per connection per second (event bytes where wire bytes are not available). */
  bandwidthPerConnectionKBps: number | null;
  /**
   * What one delivered message costs on the wire against what it carries, in steady state:
   * the protocol overhead (event framing, server fields, WebSocket/Phoenix envelopes, heartbeats)
   * a team can weigh against the payload it publishes.
   */
  perMessage: { wireBytes: number | null; payloadBytes: number | null; overheadPct: number | null };
  stabilityPct: number;
  errors: Record<string, number>;
  closeCodes: Record<string, number>;
  /** Samples whose receive time was before their send time (clock skew), recorded as 0 and counted here. */
  negativeLatencies: number;
}

export interface TimelineRow {
  /** Seconds since the start. */
  t: number;
  sseOpen: number;
  realtimeOpen: number;
  realtimeJoined: number;
  messagesPerSec: number;
  bytesInPerSec: number;
  /** postgres_changes comment deliveries received in this second (shows a change feed stopping and recovering). */
  commentsReceived: number;
  errors: number;
  sseLatency: LatencySummary | null;
  realtimeLatency: LatencySummary | null;
  serverCpuPct: number | null;
  serverRssMb: number | null;
  serverOpenFiles: number | null;
  serverLagMs: number | null;
  generatorCpuMaxPct: number;
  generatorLagP99Ms: number | null;
}

export interface PublishResult extends PublisherStats {
  rtt: LatencySummary;
  /** How late publishes left their open-loop schedule. */
  lateness: LatencySummary;
}

export interface RunResult {
  name: string;
  startedAt: string;
  durationS: number;
  target: { kind: string; url: string };
  config: {
    pattern: string;
    durationMs: number;
    rampMs: number;
    sse?: RunSpec['sse'];
    realtime?: RunSpec['realtime'];
  };
  groups: Partial<Record<GroupName, GroupResult>>;
  fanout: { messages: number; judged: number; complete: number; completePct: number | null; completion: LatencySummary };
  publish: Record<string, PublishResult>;
  server: ServerResult;
  generator: GeneratorResult;
  timeline: TimelineRow[];
  faults: { atS: number; label: string; ok: boolean; error?: string }[];
  /** Server minus generator clock, from publish round trips (null when the server returns no stamp). */
  clock: ClockEstimate | null;
  /** Set when --abort-on-fail stopped the run early. */
  aborted: { atS: number; reason: string } | null;
  /** Pre-flight adjustments and anything else a reader should know about this run. */
  notes: string[];
  metrics: Record<string, number | null>;
  thresholds: ThresholdResult[];
  passed: boolean;
  valid: boolean;
}

export interface RunInputs {
  spec: RunSpec;
  t0: number;
  endAt: number;
  agg: RunAggregator;
  finals: WorkerFinal[];
  samples: ServerSample[];
  samplerSources: string[];
  samplerProblems: string[];
  publishers: Record<string, { stats: PublisherStats; histograms: HistogramSet }>;
  faults: RunResult['faults'];
  workers: number;
  clock: ClockEstimate | null;
  aborted: RunResult['aborted'];
  notes: string[];
  /** Generator hosts of the run (absent: local workers only). */
  hosts?: HostInfo[];
  /** Hosts that went away, workers that went silent or reported late: each makes the run INVALID. */
  hostProblems?: string[];
  /** The workers' report interval (default 1 s). */
  tickMs?: number;
}


function reliability(c: SequenceCounts): DeliveryCounts {
  const expected = c.unique + c.lost;
  return { ...c, reliabilityPct: expected === 0 ? null : round((c.unique / expected) * 100, 4) };
}

/** Which histograms are a group's delivery latencies, and what they are called in results. */
export const LATENCY_NAMES: Record<GroupName, Record<string, string>> = {
  sse: { delivery: 'sse.latency', endToEnd: 'sse.latency_e2e' },
  realtime: { broadcast: 'realtime.broadcast', presence: 'realtime.presence', comments: 'realtime.comments', commentsCommit: 'realtime.comments_commit' },
};

/** The histograms that make up a group's headline latency in the timeline: the intended-time ones (what a user feels). */
const TIMELINE_LATENCY: Record<GroupName, string[]> = {
  sse: ['sse.latency_e2e'],
  realtime: ['realtime.broadcast', 'realtime.presence', 'realtime.comments'],
};

/**
 * The SSE delivery latency a user feels: from the publisher's intended time when the
 * tester published (`endToEnd`), else from the server's stamp (a stream someone else feeds).
 */
export function sseUserLatency(g: GroupResult | undefined): LatencySummary | undefined {
  return g?.latency.endToEnd ?? g?.latency.delivery;
}

/** A bucket's headline latency for a group, falling back to the server-stamped SSE figure when nothing was published by the tester. */
export function bucketHeadline(b: Bucket, group: GroupName): LatencySummary | null {
  return RunAggregator.bucketLatency(b, TIMELINE_LATENCY[group]) ?? (group === 'sse' ? RunAggregator.bucketLatency(b, ['sse.latency']) : null);
}

function groupResult(group: GroupName, inputs: RunInputs, planned: number, steadyS: number): GroupResult {
  const { agg, finals } = inputs;
  const c = (k: string): number => agg.counters.get(`${group}.${k}`) ?? 0;
  const h = agg.total;
  const delivery: Record<string, DeliveryCounts> = {};
  const total = emptyCounts();
  const kinds = group === 'sse' ? ['sse'] : ['realtime.broadcast', 'realtime.presence', 'realtime.comments'];
  for (const kind of kinds) {
    const sum = emptyCounts();
    for (const f of finals) if (f.sequences[kind]) addCounts(sum, f.sequences[kind]);
    if (sum.received || sum.lost) delivery[kind.replace(/^realtime\./, '')] = reliability(sum);
    addCounts(total, sum);
  }
  let connectedMs = 0;
  let expectedMs = 0;
  let drops = 0;
  for (const f of finals) {
    const u = f.uptime[group];
    if (!u) continue;
    connectedMs += u.connectedMs;
    expectedMs += u.expectedMs;
    drops += u.drops;
  }
  const errors: Record<string, number> = {};
  for (const [k, v] of agg.errors) if (k.startsWith(`${group}:`)) errors[k.slice(group.length + 1)] = v;
  const closeCodes: Record<string, number> = {};
  for (const f of finals) for (const [k, v] of Object.entries(f.closeCodes)) if (k.startsWith(`${group}:`)) closeCodes[k.slice(group.length + 1)] = (closeCodes[k.slice(group.length + 1)] ?? 0) + v;
  const latency: Record<string, LatencySummary> = {};
  let negative = 0;
  for (const [label, name] of Object.entries(LATENCY_NAMES[group])) {
    const s = h.summary(name);
    if (s.count) latency[label] = s;
    negative += h.negative.get(name) ?? 0;
  }
  const established = c('established');
  const peakOpen = agg.peaks.get(group === 'sse' ? 'sse.open' : 'realtime.joined') ?? 0;
  const bytesIn = c('bytes_in');
  const messages = group === 'sse' ? c('messages') : c('frames');
  const steady = steadyBuckets(inputs);
  const steadySum = (counter: string): number => steady.reduce((a, b) => a + (b.counters.get(counter) ?? 0), 0);
  const steadyWire = steadySum(`${group}.wire_bytes_in`);
  const steadyBytes = steadyWire > 0 ? steadyWire : steadySum(`${group}.bytes_in`);
  const steadyMessages = steadySum(group === 'sse' ? 'sse.messages' : 'realtime.frames');
  const steadyOpen = mean(steady.map((b) => b.gauges[group === 'sse' ? 'sse.open' : 'realtime.open'] ?? 0)) ?? 0;
  const payload = payloadPerMessage(group, inputs);
  const wirePerMessage = steadyMessages > 0 && steadyBytes > 0 ? round(steadyBytes / steadyMessages, 1) : null;
  return {
    group,
    planned,
    established,
    connectSuccessPct: planned ? round((Math.min(established, planned) / planned) * 100, 3) : 100,
    connectAttempts: c('connect.attempts'),
    connectFailures: c('connect.failed'),
    reconnects: c('reconnects'),
    drops,
    peakOpen,
    connect: h.summary(`${group}.connect`),
    join: group === 'realtime' ? h.summary('realtime.join') : null,
    subscribe: group === 'realtime' ? h.summary('realtime.subscribe') : null,
    firstEvent: h.summary(`${group}.first_event`),
    latency,
    delivery,
    deliveryTotal: reliability(total),
    messages,
    messagesPerSec: round(messages / Math.max(0.001, (inputs.endAt - inputs.t0) / 1000), 2),
    bytesIn,
    bytesOut: c('bytes_out'),
    wireBytesIn: c('wire_bytes_in'),
    bandwidthPerConnectionKBps: steadyOpen > 0 && steadyS > 0 ? round(steadyBytes / 1024 / steadyOpen / steadyS, 4) : null,
    perMessage: {
      wireBytes: wirePerMessage,
      payloadBytes: payload,
      overheadPct: wirePerMessage !== null && payload !== null && wirePerMessage > 0 ? round(Math.max(0, (wirePerMessage - payload) / wirePerMessage) * 100, 1) : null,
    },
    stabilityPct: expectedMs === 0 ? 100 : round((connectedMs / expectedMs) * 100, 3),
    errors,
    closeCodes,
    negativeLatencies: negative,
  };
}

/** Mean bytes of the application payload per published message: SSE from the publisher's request bodies, Realtime from what the users sent. */
function payloadPerMessage(group: GroupName, inputs: RunInputs): number | null {
  if (group === 'sse') {
    const p = inputs.publishers.sse?.stats;
    return p && p.sent > 0 ? round(p.payloadBytes / p.sent, 1) : null;
  }
  const n = inputs.agg.counters.get('realtime.payloads_sent') ?? 0;
  return n > 0 ? round((inputs.agg.counters.get('realtime.payload_bytes_sent') ?? 0) / n, 1) : null;
}

/** The run's seconds while connections were opening (the ramp and one second to settle), and the steady ones after. */
function phases(inputs: RunInputs): { connecting: Bucket[]; steady: Bucket[] } {
  const all = [...inputs.agg.buckets.values()].sort((a, b) => a.second - b.second);
  const fromS = Math.ceil((inputs.spec.rampMs + 1000) / 1000);
  const endS = Math.floor((inputs.endAt - inputs.t0) / 1000);
  return { connecting: all.filter((b) => b.second < Math.min(fromS, endS)), steady: all.filter((b) => b.second >= fromS && b.second < endS) };
}

/** Buckets after the ramp, when every connection should be open: where steady-state figures come from. */
function steadyBuckets(inputs: RunInputs): Bucket[] {
  const all = [...inputs.agg.buckets.values()].sort((a, b) => a.second - b.second);
  const fromS = Math.ceil((inputs.spec.rampMs + 1000) / 1000);
  const endS = Math.floor((inputs.endAt - inputs.t0) / 1000);
  const steady = all.filter((b) => b.second >= fromS && b.second < endS);
  return steady.length ? steady : all.filter((b) => b.second < endS);
}

function timeline(inputs: RunInputs): TimelineRow[] {
  const { agg, samples, t0 } = inputs;
  const rows: TimelineRow[] = [];
  // Rows up to the end of the run; the workers' closing tick (after the drain) is not part of the test.
  const endS = Math.ceil((inputs.endAt - t0) / 1000);
  for (const b of [...agg.buckets.values()].sort((a, c) => a.second - c.second)) {
    if (b.second >= endS) continue;
    const at = t0 + b.second * 1000;
    let sample: ServerSample | undefined;
    for (const s of samples) if (s.t <= at + 1000) sample = s;
    const lag = b.histograms.summary(GENERATOR_LAG);
    rows.push({
      t: b.second,
      sseOpen: b.gauges['sse.open'] ?? 0,
      realtimeOpen: b.gauges['realtime.open'] ?? 0,
      realtimeJoined: b.gauges['realtime.joined'] ?? 0,
      messagesPerSec: (b.counters.get('sse.messages') ?? 0) + (b.counters.get('realtime.frames') ?? 0),
      bytesInPerSec: (['sse', 'realtime'] as const).reduce((a, g) => a + (b.counters.get(`${g}.wire_bytes_in`) || b.counters.get(`${g}.bytes_in`) || 0), 0),
      commentsReceived: b.counters.get('realtime.comments.received') ?? 0,
      errors: b.errors,
      sseLatency: bucketHeadline(b, 'sse'),
      realtimeLatency: bucketHeadline(b, 'realtime'),
      serverCpuPct: sample?.cpuPct === null || sample?.cpuPct === undefined ? null : round(sample.cpuPct, 1),
      serverRssMb: sample?.rssBytes ? round(sample.rssBytes / MB, 1) : null,
      serverOpenFiles: sample?.openFiles ?? null,
      serverLagMs: sample?.eventLoopLagP99Ms === null || sample?.eventLoopLagP99Ms === undefined ? null : round(sample.eventLoopLagP99Ms, 2),
      generatorCpuMaxPct: round(Math.max(0, ...b.workerCpu.values()), 1),
      generatorLagP99Ms: lag.p99,
    });
  }
  return rows;
}

export function buildResult(inputs: RunInputs): RunResult {
  const { spec, agg } = inputs;
  agg.fanout.settle();
  const steady = steadyBuckets(inputs);
  const steadyS = steady.length;
  const groups: RunResult['groups'] = {};
  if (spec.sse) groups.sse = groupResult('sse', inputs, spec.sse.connections, steadyS);
  // Across hosts, latency from a server stamp includes the clock offset; it is constant over the
  // run, so subtracting it from every percentile is exact. On loopback both ends read one clock.
  const delivery = groups.sse?.latency.delivery;
  if (delivery && inputs.clock && !isLoopbackHost(new URL(spec.target.url).hostname)) {
    const off = inputs.clock.offsetMs;
    const shift = (v: number | null): number | null => (v === null ? null : round(v + off, 3));
    groups.sse!.latency.deliveryClockCorrected = { ...delivery, min: shift(delivery.min), mean: shift(delivery.mean), p50: shift(delivery.p50), p90: shift(delivery.p90), p99: shift(delivery.p99), p999: shift(delivery.p999), max: shift(delivery.max) };
  }
  if (spec.realtime) groups.realtime = groupResult('realtime', inputs, spec.realtime.projects * spec.realtime.usersPerProject, steadyS);
  const fan = agg.fanout;
  const publish: Record<string, PublishResult> = {};
  for (const [name, p] of Object.entries(inputs.publishers)) publish[name] = { ...p.stats, rtt: summarize(p.histograms.get(`publish.${name}`)), lateness: summarize(p.histograms.get(`publish.${name}.lateness`)) };
  const server = serverResult(inputs, steady);
  const generator = generatorResult(inputs, phases(inputs));
  if (!generator.valid && (server.machineCpuMeanPct ?? 0) > 90 && generator.cpuMaxPct < 50) {
    generator.reasons.push(`the machine's CPU averaged ${server.machineCpuMeanPct}% while the generator used ${generator.cpuMaxPct}% of a core: other processes kept it from running (contention, not the generator's own load)`);
  }
  const partial = {
    name: spec.name,
    startedAt: new Date(inputs.t0).toISOString(),
    durationS: round((inputs.endAt - inputs.t0) / 1000, 1),
    target: { kind: spec.target.kind, url: spec.target.url },
    config: { pattern: spec.pattern, durationMs: spec.durationMs, rampMs: spec.rampMs, sse: spec.sse, realtime: spec.realtime },
    groups,
    fanout: { messages: fan.messages, judged: fan.judged, complete: fan.complete, completePct: fan.judged ? round((fan.complete / fan.judged) * 100, 3) : null, completion: agg.total.summary(FANOUT_COMPLETION) },
    publish,
    server,
    generator,
    timeline: timeline(inputs),
    faults: inputs.faults,
    clock: inputs.clock,
    aborted: inputs.aborted,
    notes: inputs.notes,
  };
  const metrics = flattenMetrics(partial);
  const thresholds = evaluateThresholds(spec.thresholds, metrics);
  return { ...partial, metrics, thresholds, passed: thresholdsPassed(thresholds), valid: partial.generator.valid };
}
