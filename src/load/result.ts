// Turns what a run collected (merged histograms, counters, worker finals, server
// samples, publisher stats) into its result: per-transport figures, fan-out, server
// resources with memory per connection as a fitted slope, the generator's health and
// validity, a per-second timeline, and the flat metric map thresholds are judged on.
import { HistogramSet, summarize, type LatencySummary } from './histogram.js';
import { addCounts, emptyCounts, type SequenceCounts } from './sequence.js';
import { linearFit, type LinearFit } from './fit.js';
import { FANOUT_COMPLETION, RunAggregator, type Bucket } from './aggregate.js';
import { GENERATOR_LAG, SCHEDULE_LATENESS } from './recorder.js';
import type { ClockEstimate } from './clock.js';
import { isLoopbackHost } from './target.js';
import { evaluateThresholds, thresholdsPassed, type ThresholdResult } from './thresholds.js';
import type { GroupName, WorkerFinal } from './plan.js';
import type { ServerSample } from './sampler.js';
import type { PublisherStats } from './publishers.js';
import type { HostInfo } from './pool.js';
import { capacityOf, measureCost, type GeneratorCapacity, type GeneratorCost } from './generator-cost.js';
import { connectingLagLimit } from './spec.js';
import type { RunSpec } from './spec.js';

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

export interface ServerResult {
  sources: string[];
  problems: string[];
  idleCpuPct: number | null;
  steadyCpuPct: number | null;
  cpuPer100ConnectionsPct: number | null;
  rssStartMb: number | null;
  rssPeakMb: number | null;
  rssEndMb: number | null;
  /** The fit of RSS against open connections, whether or not it is trustworthy (see memoryMeasured). */
  memoryPerConnection: (LinearFit & { kbPerConnection: number }) | null;
  /**
   * Whether the fit measures memory per connection: r² ≥ MIN_MEMORY_R2, a positive slope and
   * RSS that actually grew. Otherwise the figure is "not measured" (memoryNotMeasured says
   * why) and no threshold passes on it.
   */
  memoryMeasured: boolean;
  memoryNotMeasured: string | null;
  /** (connections, RSS MB) points the slope was fitted on. */
  rssPoints: { connections: number; rssMb: number }[];
  eventLoopLagP99MaxMs: number | null;
  openFilesMax: number | null;
  machineCpuMeanPct: number | null;
}

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

/** Worker index the coordinator reports its own health under. */
export const COORDINATOR = -1;

const round = (v: number, digits = 3): number => Math.round(v * 10 ** digits) / 10 ** digits;
const mean = (xs: readonly number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const MB = 1024 * 1024;

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

function openConnections(gauges: Record<string, number>): number {
  return (gauges['sse.open'] ?? 0) + (gauges['realtime.open'] ?? 0);
}

/** Below this r² the RSS samples did not follow the connection count: the slope is noise (GC, allocator). */
export const MIN_MEMORY_R2 = 0.5;
/** RSS must rise at least this much over the fitted samples; less is within what RSS sampling resolves (page granularity, GC). */
export const MIN_MEMORY_RISE_MB = 1;
/**
 * Connections must vary over at least this many: a gateway's RSS wanders by megabytes (JIT,
 * GC, buffers) while a connection costs kilobytes, so a slope over a few dozen is noise.
 */
export const MIN_MEMORY_CONNECTION_SPAN = 200;
/** A slope through fewer server samples than this is a line through a handful of GC moments. */
export const MIN_MEMORY_SAMPLES = 5;

/**
 * Whether an RSS-against-connections fit is a measurement of memory per connection, and if
 * not, why — a slope with r² near 0, or from a process that did not grow, is not one.
 */
export function judgeMemoryFit(fit: LinearFit | null, rssMb: readonly number[]): { measured: boolean; reason: string | null } {
  if (!fit) return { measured: false, reason: 'connections did not vary while the server was sampled, so no slope can be fitted' };
  if (fit.n < MIN_MEMORY_SAMPLES) return { measured: false, reason: `only ${fit.n} server samples (under ${MIN_MEMORY_SAMPLES}): too few to fit a slope on` };
  if (fit.xMax - fit.xMin < MIN_MEMORY_CONNECTION_SPAN) return { measured: false, reason: `connections varied over only ${fit.xMax - fit.xMin} (under ${MIN_MEMORY_CONNECTION_SPAN}): per-connection memory is lost in the RSS noise at this scale` };
  const rise = rssMb.length ? Math.max(...rssMb) - Math.min(...rssMb) : 0;
  if (fit.slope <= 0) return { measured: false, reason: `RSS did not grow with connections (slope ${round(fit.slope * 1024, 3)} KB per connection)` };
  if (rise < MIN_MEMORY_RISE_MB) return { measured: false, reason: `RSS moved by only ${round(rise, 2)} MB over the run (under ${MIN_MEMORY_RISE_MB} MB): too little growth to attribute to connections` };
  if (fit.r2 === null || fit.r2 < MIN_MEMORY_R2) return { measured: false, reason: `RSS did not follow the connection count (r² ${fit.r2 === null ? 'n/a' : round(fit.r2, 3)} < ${MIN_MEMORY_R2}): garbage collection moved it more than connections did` };
  return { measured: true, reason: null };
}

function serverResult(inputs: RunInputs, steady: Bucket[]): ServerResult {
  const { samples, t0, endAt, agg } = inputs;
  const before = samples.filter((s) => s.t < t0 && s.cpuPct !== null);
  const steadyFrom = t0 + (steady[0]?.second ?? 0) * 1000;
  const during = samples.filter((s) => s.t >= steadyFrom && s.t <= endAt);
  const idleCpu = mean(before.map((s) => s.cpuPct!));
  const steadyCpu = mean(during.filter((s) => s.cpuPct !== null).map((s) => s.cpuPct!));
  const steadyConns = mean(steady.map((b) => openConnections(b.gauges)));
  const buckets = [...agg.buckets.values()].sort((a, b) => a.second - b.second);
  const connsAt = (t: number): number => {
    if (t < t0) return 0;
    const s = Math.floor((t - t0) / 1000);
    let best: Bucket | undefined;
    for (const b of buckets) if (b.second <= s) best = b;
    return best ? openConnections(best.gauges) : 0;
  };
  const rssPoints = samples.filter((s) => s.rssBytes !== null && s.t <= endAt).map((s) => ({ connections: connsAt(s.t), rssMb: round(s.rssBytes! / MB, 3) }));
  const fit = linearFit(rssPoints.map((p) => ({ x: p.connections, y: p.rssMb })));
  const rss = samples.filter((s) => s.rssBytes !== null && s.t <= endAt).map((s) => s.rssBytes! / MB);
  const memory = judgeMemoryFit(fit, rss);
  const lags = samples.filter((s) => s.eventLoopLagP99Ms !== null && s.t >= t0).map((s) => s.eventLoopLagP99Ms!);
  const fds = samples.filter((s) => s.openFiles !== null).map((s) => s.openFiles!);
  const machine = samples.filter((s) => s.machineCpuPct !== null && s.t >= t0).map((s) => s.machineCpuPct!);
  return {
    sources: inputs.samplerSources,
    problems: inputs.samplerProblems,
    idleCpuPct: idleCpu === null ? null : round(idleCpu, 2),
    steadyCpuPct: steadyCpu === null ? null : round(steadyCpu, 2),
    cpuPer100ConnectionsPct: steadyCpu !== null && steadyConns ? round((Math.max(0, steadyCpu - (idleCpu ?? 0)) / steadyConns) * 100, 3) : null,
    rssStartMb: rss.length ? round(rss[0]!, 2) : null,
    rssPeakMb: rss.length ? round(Math.max(...rss), 2) : null,
    rssEndMb: rss.length ? round(rss[rss.length - 1]!, 2) : null,
    memoryPerConnection: fit ? { ...fit, slope: fit.slope, kbPerConnection: round(fit.slope * 1024, 3) } : null,
    memoryMeasured: memory.measured,
    memoryNotMeasured: memory.reason,
    rssPoints,
    eventLoopLagP99MaxMs: lags.length ? round(Math.max(...lags), 2) : null,
    openFilesMax: fds.length ? Math.max(...fds) : null,
    machineCpuMeanPct: machine.length ? round(mean(machine)!, 1) : null,
  };
}

/** `worker 3 on agent 10.0.0.7:7100`, or `worker 3` when every worker is local. */
function whereIs(worker: number, hosts: readonly HostInfo[]): string {
  if (worker === COORDINATOR) return 'the coordinator';
  const h = hosts.find((x) => x.workers.includes(worker));
  return h && h.name !== 'local' ? `worker ${worker} on ${h.name}` : `worker ${worker}`;
}

function generatorResult(inputs: RunInputs): GeneratorResult {
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
  const { connecting, steady } = phases(inputs);
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

/** The flat metric map thresholds and reports refer to (`sse.latency.p99`, `realtime.reliability_pct`, ...). */
/**
 * Metrics that can be judged while a run is going, straight from the merged histograms:
 * `<histogram>.p50|p90|p99|p999|max` (e.g. `sse.latency.p99`, `realtime.presence.p99`).
 */
export function liveMetrics(h: HistogramSet): Record<string, number | null> {
  const m: Record<string, number | null> = {};
  for (const name of h.names()) {
    const s = h.summary(name);
    if (!s.count) continue;
    for (const p of ['p50', 'p90', 'p99', 'p999', 'max', 'mean'] as const) m[`${name}.${p}`] = s[p];
  }
  return m;
}

export function flattenMetrics(r: Omit<RunResult, 'metrics' | 'thresholds' | 'passed' | 'valid'>): Record<string, number | null> {
  const m: Record<string, number | null> = {};
  const lat = (prefix: string, s: LatencySummary | null | undefined): void => {
    if (!s || !s.count) return;
    for (const p of ['p50', 'p90', 'p99', 'p999', 'max', 'mean'] as const) m[`${prefix}.${p}`] = s[p];
  };
  for (const g of Object.values(r.groups)) {
    if (!g) continue;
    const p = g.group;
    m[`${p}.connect_success_pct`] = g.connectSuccessPct;
    m[`${p}.stability_pct`] = g.stabilityPct;
    m[`${p}.reconnects`] = g.reconnects;
    m[`${p}.drops`] = g.drops;
    m[`${p}.errors`] = Object.values(g.errors).reduce((a, b) => a + b, 0);
    m[`${p}.messages_per_s`] = g.messagesPerSec;
    m[`${p}.bandwidth_per_connection_kbps`] = g.bandwidthPerConnectionKBps;
    m[`${p}.wire_bytes_per_message`] = g.perMessage.wireBytes;
    m[`${p}.payload_bytes_per_message`] = g.perMessage.payloadBytes;
    m[`${p}.negative_latencies`] = g.negativeLatencies;
    lat(`${p}.connect`, g.connect);
    lat(`${p}.join`, g.join);
    lat(`${p}.subscribe`, g.subscribe);
    lat(`${p}.first_event`, g.firstEvent);
    if (p === 'sse') {
      lat('sse.latency', g.latency.delivery);
      lat('sse.latency_e2e', g.latency.endToEnd);
    } else {
      lat('realtime.broadcast', g.latency.broadcast);
      lat('realtime.presence', g.latency.presence);
      lat('realtime.comments', g.latency.comments);
      lat('realtime.comments_commit', g.latency.commentsCommit);
    }
    if (g.deliveryTotal.unique + g.deliveryTotal.lost > 0) {
      m[`${p}.reliability_pct`] = g.deliveryTotal.reliabilityPct;
      m[`${p}.lost`] = g.deliveryTotal.lost;
      m[`${p}.duplicates`] = g.deliveryTotal.duplicates;
      m[`${p}.reordered`] = g.deliveryTotal.reordered;
    }
    for (const [kind, d] of Object.entries(g.delivery)) if (p === 'realtime') m[`realtime.${kind}.reliability_pct`] = d.reliabilityPct;
  }
  lat('fanout.completion', r.fanout.completion);
  m['fanout.complete_pct'] = r.fanout.completePct;
  m['server.cpu_pct'] = r.server.steadyCpuPct;
  m['server.cpu_per_100_connections_pct'] = r.server.cpuPer100ConnectionsPct;
  // A slope that is not a measurement (r² near 0, a process that did not grow) is no data, never a pass.
  const mem = r.server.memoryMeasured ? r.server.memoryPerConnection : null;
  m['server.memory_per_connection_mb'] = mem ? round(mem.slope, 6) : null;
  m['server.memory_per_connection_kb'] = mem?.kbPerConnection ?? null;
  m['server.rss_peak_mb'] = r.server.rssPeakMb;
  m['server.event_loop_lag_p99_ms'] = r.server.eventLoopLagP99MaxMs;
  m['server.open_files_max'] = r.server.openFilesMax;
  const bw = Object.values(r.groups)
    .map((g) => g?.bandwidthPerConnectionKBps)
    .filter((v): v is number => v !== null && v !== undefined);
  m['bandwidth_per_connection_kbps'] = bw.length ? Math.max(...bw) : null;
  m['generator.lag.p99'] = r.generator.lag.p99;
  m['generator.schedule_lateness.p99'] = r.generator.scheduleLateness.p99;
  m['clock.offset_ms'] = r.clock?.offsetMs ?? null;
  m['generator.cpu_max_pct'] = r.generator.cpuMaxPct;
  return m;
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
  const generator = generatorResult(inputs);
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
