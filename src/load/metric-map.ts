// The flat metric map thresholds are judged on and reports refer to
// (`sse.latency.p99`, `realtime.reliability_pct`, `server.cpu_pct`, ...): from the merged
// histograms while a run goes, from its whole result at the end.
import type { HistogramSet, LatencySummary } from './histogram.js';
import { round } from './numbers.js';
import type { RunResult } from './result.js';

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

/** The flat metric map thresholds and reports refer to (`sse.latency.p99`, `realtime.reliability_pct`, ...). */
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
