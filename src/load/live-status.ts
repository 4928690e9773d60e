// The live status of a running load, computed once a second from the merged ticks and
// the latest server sample (src/load/progress.ts prints it).
import { RunAggregator } from './aggregate.js';
import { bucketHeadline } from './result.js';
import type { ServerSampler } from './sampler.js';
import type { RunSpec } from './spec.js';

export interface LiveStatus {
  name: string;
  elapsedS: number;
  durationS: number;
  sseOpen: number;
  ssePlanned: number;
  realtimeJoined: number;
  realtimePlanned: number;
  messagesPerSec: number;
  p99Ms: number | null;
  errors: number;
  serverCpuPct: number | null;
  serverRssMb: number | null;
  generatorLagP99Ms: number | null;
}

export function liveStatus(spec: RunSpec, agg: RunAggregator, workers: number, sampler: ServerSampler, t0: number): LiveStatus {
  const b = agg.latestComplete(workers);
  const g = agg.gauges();
  const last = sampler.samples[sampler.samples.length - 1];
  const lat = b ? RunAggregator.bucketLatency(b, ['sse.latency_e2e', 'realtime.broadcast', 'realtime.presence', 'realtime.comments']) ?? bucketHeadline(b, 'sse') : null;
  return {
    name: spec.name,
    elapsedS: Math.max(0, Math.round((Date.now() - t0) / 1000)),
    durationS: Math.round(spec.durationMs / 1000),
    sseOpen: g['sse.open'] ?? 0,
    ssePlanned: spec.sse?.connections ?? 0,
    realtimeJoined: g['realtime.joined'] ?? 0,
    realtimePlanned: spec.realtime ? spec.realtime.projects * spec.realtime.usersPerProject : 0,
    messagesPerSec: b ? (b.counters.get('sse.messages') ?? 0) + (b.counters.get('realtime.frames') ?? 0) : 0,
    p99Ms: lat?.p99 ?? null,
    errors: [...agg.errors.values()].reduce((a, c) => a + c, 0),
    serverCpuPct: last?.cpuPct ?? null,
    serverRssMb: last?.rssBytes ? Math.round(last.rssBytes / 1048576) : null,
    generatorLagP99Ms: b ? b.histograms.summary('generator.lag').p99 : null,
  };
}
