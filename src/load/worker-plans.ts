// Splits a load run over the generator's worker processes: how many workers it needs, and
// which connections each one opens, when and where (the plans the coordinator sends out).
import { arrivalOffsets } from './schedule.js';
import { MAX_SOCKETS_PER_WORKER } from './pool.js';
import { allocateSourceAddresses, realtimeSocketUrl, sseStreamUrl, sseTopic } from './target.js';
import type { RealtimeUserPlan, SseConnectionPlan, WorkerPlan } from './plan.js';
import type { RunSpec } from './spec.js';

/** A progress stream of one SSE load: where connection i subscribes and how stream s is published to. */
export interface SseStreams {
  /** Per stream: id (content id), owner user id. */
  streams: { id: string; userId: string }[];
}

export function socketsOf(spec: RunSpec): number {
  return (spec.sse?.connections ?? 0) + (spec.realtime ? spec.realtime.projects * spec.realtime.usersPerProject : 0);
}

export function workersFor(spec: RunSpec): number {
  return Math.max(spec.workers ?? 2, Math.ceil(socketsOf(spec) / MAX_SOCKETS_PER_WORKER));
}

/** The streams of an SSE load when the caller prepares none: generated ids. */
export function defaultStreams(count: number, runId: string): SseStreams {
  return { streams: Array.from({ length: count }, (_, i) => ({ id: `${runId}-c${i}`, userId: `${runId}-u${i}` })) };
}

/** Splits a run into per-worker plans; connections are dealt round-robin so every worker gets a share of each arrival period. */
export function planWorkers(spec: RunSpec, workers: number, sse: SseStreams | undefined, runId: string, tickMs: number): WorkerPlan[] {
  const addresses = allocateSourceAddresses(spec.target.url, workers, Math.ceil(socketsOf(spec) / workers));
  const plans: WorkerPlan[] = Array.from({ length: workers }, (_, w) => ({
    runId,
    workerIndex: w,
    workers,
    localAddresses: addresses?.[w] ?? null,
    tickMs,
  }));
  const connectTimeoutMs = spec.connectTimeoutMs ?? 10_000;
  const churnMeanMs = Math.max(2000, spec.durationMs / 3);
  if (spec.sse && sse) {
    const s = spec.sse;
    const offsets = arrivalOffsets(s.connections, spec.pattern, spec.rampMs);
    const headers: Record<string, string> = {};
    const key = spec.target.serviceKey ?? spec.target.anonKey;
    if (key && spec.target.kind !== 'sse-url') headers.authorization = `Bearer ${key}`;
    const perWorker: SseConnectionPlan[][] = plans.map(() => []);
    for (let i = 0; i < s.connections; i++) {
      const stream = sse.streams[i % sse.streams.length]!;
      const url = sseStreamUrl(spec.target, s.path, stream.id, stream.userId, i);
      const topic = spec.target.kind === 'sse-url' ? url : sseTopic(s.path, stream.id, stream.userId);
      perWorker[i % workers]!.push({ id: i, url, audience: `sse:${topic}`, stream: topic, at: offsets[i]! });
    }
    plans.forEach((p, w) => {
      p.sse = { connections: perWorker[w]!, headers, reconnect: s.reconnect, reconnectDelayMs: 2000, connectTimeoutMs, pattern: spec.pattern, churnMeanMs };
    });
  }
  if (spec.realtime) {
    const r = spec.realtime;
    const n = r.projects * r.usersPerProject;
    const offsets = arrivalOffsets(n, spec.pattern, spec.rampMs);
    const perWorker: RealtimeUserPlan[][] = plans.map(() => []);
    for (let i = 0; i < n; i++) {
      const p = i % r.projects;
      const u = Math.floor(i / r.projects);
      perWorker[i % workers]!.push({ id: i, project: `${runId}-p${p}`, userKey: `user-${p}-${u}`, at: offsets[i]!, sendsDoc: u === 0 && r.docRate > 0 });
    }
    plans.forEach((p, w) => {
      p.realtime = {
        client: r.client ?? 'raw',
        wsUrl: realtimeSocketUrl(spec.target),
        httpUrl: spec.target.url,
        accessToken: spec.target.anonKey ?? '',
        users: perWorker[w]!,
        presence: r.presence,
        presenceIntervalMs: r.presenceIntervalMs,
        docIntervalMs: r.docRate > 0 ? 1000 / r.docRate : 0,
        comments: r.commentRate > 0,
        commentsTable: { schema: 'public', table: 'project_comments', filterColumn: 'project_id' },
        heartbeatMs: 25_000,
        connectTimeoutMs,
        reconnect: r.reconnect,
        pattern: spec.pattern,
        churnMeanMs,
      };
    });
  }
  return plans;
}
