// Judges the failure scenario: the SSE figures measured while the database was down
// against the solo SSE runs (degraded only beyond both the interference budget and the
// run-to-run spread), and what the comment inserts and Realtime saw meanwhile.
import { sseUserLatency } from '../load/result.js';
import { compareToBaseline, measureSpread } from './noise.js';
import { interferenceBudget } from './decision.js';
import type { FaultComparison, ScenarioRecord, Spread } from './model.js';

/** A latency row of the failure comparison: degraded only when over the interference budget AND beyond the solo runs' spread. */
function latencyRow(metric: string, solo: Spread, duringFault: number | null): FaultComparison['rows'][number] {
  const c = compareToBaseline(solo, duringFault, interferenceBudget);
  return { metric, solo: solo.median, duringFault, verdict: c.verdict === 'worse' ? 'degraded' : c.verdict === 'not worse' ? 'unaffected' : 'cannot tell', why: c.why };
}

/**
 * The failure scenario against its solo run: whether the surviving side (SSE) was
 * unaffected while the database was down, and what the failed side (comments) saw.
 */
export function compareFault(fault: ScenarioRecord, scenarios: readonly ScenarioRecord[], soloId: string, method: string, restoreAtMs: number): FaultComparison {
  const f = fault.result;
  const solo = scenarios.find((x) => x.id === soloId && x.result.valid);
  const s = solo?.result;
  const rows: FaultComparison['rows'] = [];
  const sseF = f.groups.sse;
  const sseS = s?.groups.sse;
  rows.push(latencyRow('SSE delivery p99 (ms)', measureSpread(scenarios, soloId, 'SSE delivery p99', (r) => sseUserLatency(r.groups.sse)?.p99), sseUserLatency(sseF)?.p99 ?? null));
  rows.push(latencyRow('SSE delivery p50 (ms)', measureSpread(scenarios, soloId, 'SSE delivery p50', (r) => sseUserLatency(r.groups.sse)?.p50), sseUserLatency(sseF)?.p50 ?? null));
  rows.push({ metric: 'SSE stability (%)', solo: sseS?.stabilityPct ?? null, duringFault: sseF?.stabilityPct ?? null, verdict: (sseF?.stabilityPct ?? 0) > 99 ? 'unaffected' : 'degraded' });
  rows.push({ metric: 'SSE messages lost', solo: sseS?.deliveryTotal.lost ?? null, duringFault: sseF?.deliveryTotal.lost ?? null, verdict: (sseF?.deliveryTotal.lost ?? 0) <= (sseS?.deliveryTotal.lost ?? 0) ? 'unaffected' : 'degraded' });
  rows.push({ metric: 'SSE connections established (%)', solo: sseS?.connectSuccessPct ?? null, duringFault: sseF?.connectSuccessPct ?? null, verdict: (sseF?.connectSuccessPct ?? 0) >= 100 ? 'unaffected' : 'degraded' });
  rows.push({ metric: 'SSE drops', solo: sseS?.drops ?? null, duringFault: sseF?.drops ?? null, verdict: (sseF?.drops ?? 0) <= (sseS?.drops ?? 0) ? 'unaffected' : 'degraded' });
  const restoreS = restoreAtMs / 1000;
  const afterRestore = f.timeline.filter((r) => r.t >= restoreS).reduce((a, r) => a + r.commentsReceived, 0);
  const pub = f.publish.comments;
  const notes: string[] = [];
  const rt = f.groups.realtime;
  if (rt) notes.push(`Realtime during the run: presence p99 ${rt.latency.presence?.p99 ?? 'n/a'} ms, broadcast p99 ${rt.latency.broadcast?.p99 ?? 'n/a'} ms, stability ${rt.stabilityPct}%`);
  if (pub) notes.push(`comment inserts: ${pub.ok} accepted, ${pub.failed} failed (${Object.entries(pub.errors).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'})`);
  return {
    scenarioId: fault.id,
    soloScenarioId: solo?.id ?? 'none',
    failedSubsystem: 'database',
    method,
    survivor: 'sse',
    rows,
    unaffected: rows.every((r) => r.verdict !== 'degraded'),
    valid: f.valid && !!s?.valid,
    failedSide: {
      errorsDuringFault: { ...(rt?.errors ?? {}), ...Object.fromEntries(Object.entries(pub?.errors ?? {}).map(([k, v]) => [`comment_insert_${k}`, v])) },
      commentsPublished: pub?.ok ?? 0,
      commentsFailed: pub?.failed ?? 0,
      deliveredAfterRecovery: pub ? afterRestore > 0 : null,
      notes,
    },
  };
}
