// The monitor: `/metrics`, alert rules and `/api/alerts`, and the live dashboard.
//
// One sampler runs from the gateway's shared sweep every `monitorIntervalMs` (1 s by
// default). Each sample reads the metrics registry and the process once, then feeds
// both the alert engine and every dashboard viewer, so watching the dashboard costs one
// serialization per second however many people watch.
import { Counter, Gauge } from 'prom-client';
import { defineModule, type Services } from '../server/services.js';
import { sendJson, writeHead } from '../server/http-errors.js';
import { loadAlertConfig } from './alert-rules.js';
import { AlertEngine } from './alerts.js';
import { ProcessStats } from './process-stats.js';
import { Sampler } from './sampler.js';
import { SIGNAL_NAMES, describeSignal, evaluateSignal, type SignalName, type Snapshot } from './signals.js';
import { DashboardFeed } from './dashboard-feed.js';
import { registerDashboardPage } from './dashboard-page.js';
import { TopicActivity, type BusyTopic } from './topic-activity.js';
import { authenticate, countingErrors, requireServiceRole } from '../server/http-auth.js';
import { AlertWebhook } from './webhook.js';

/** Points a new dashboard viewer receives as history (5 minutes at the default interval). */
const DASHBOARD_POINTS = 300;
const BUSIEST_TOPICS = 10;

/** Every signal over one sample interval: what the dashboard plots. `null` = no data. */
export interface DashboardPoint {
  t: number;
  v: Record<SignalName, number | null>;
}

function toPoint(window: Snapshot[]): DashboardPoint {
  const v = {} as Record<SignalName, number | null>;
  for (const name of SIGNAL_NAMES) {
    const value = evaluateSignal(name, window);
    v[name] = value === undefined ? null : Number(value.toPrecision(5));
  }
  return { t: window[window.length - 1]!.t, v };
}

export const monitorModule = defineModule({
  name: 'monitor',
  needs: ['config', 'log', 'metrics', 'router', 'connections', 'hub', 'auth', 'clientAddress', 'lifecycle', 'listening'],
  start: (deps) => registerMonitor(deps),
});

function registerMonitor(deps: Pick<Services, 'config' | 'log' | 'metrics' | 'router' | 'connections' | 'hub' | 'auth' | 'clientAddress' | 'lifecycle' | 'listening'>): void {
  const { config, log, metrics, router, lifecycle, listening } = deps;
  const alertConfig = loadAlertConfig(config.alerts);
  const intervalMs = config.monitorIntervalMs;
  const longestWindow = Math.max(0, ...alertConfig.rules.map((r) => r.windowMs));
  const processStats = new ProcessStats();
  const sampler = new Sampler(metrics, deps.connections, processStats, Math.max(DASHBOARD_POINTS + 1, Math.ceil(longestWindow / intervalMs) + 2));
  const engine = new AlertEngine(alertConfig.rules);
  const activity = new TopicActivity(deps.hub);
  const points: DashboardPoint[] = [];
  let busiest: BusyTopic[] = [];

  const feed = new DashboardFeed(deps, () => ({
    instance: listening.url,
    pid: process.pid,
    intervalMs,
    signals: Object.fromEntries(SIGNAL_NAMES.map((n) => [n, describeSignal(n)])),
    rules: engine.rules,
    points,
    busiest,
    active: engine.active(),
    recent: engine.recent(),
  }));

  const firing = new Gauge({ name: 'fanout_alerts_firing', help: 'alert rules currently firing (1) or not (0)', labelNames: ['rule', 'severity'], registers: [metrics.registry] });
  for (const rule of engine.rules) firing.labels(rule.name, rule.severity).set(0);
  // prom-client's nodejs_eventloop_lag_* reset on every scrape, so two scrapers (Prometheus
  // and a load tester) would each see only part of the picture; these cover the last monitor
  // interval whoever scrapes.
  const lagP99 = new Gauge({ name: 'fanout_event_loop_lag_p99_seconds', help: 'event-loop delay p99 over the last monitor interval', registers: [metrics.registry] });
  const lagMax = new Gauge({ name: 'fanout_event_loop_lag_max_seconds', help: 'longest event-loop delay in the last monitor interval', registers: [metrics.registry] });
  const webhookFailures = new Counter({ name: 'fanout_alert_webhook_failures_total', help: 'alert events the webhook could not deliver after its retries', registers: [metrics.registry] });
  const webhook = alertConfig.webhook ? new AlertWebhook(alertConfig.webhook, log, () => webhookFailures.inc()) : undefined;

  engine.onEvent((event) => {
    firing.labels(event.rule, event.severity).set(event.status === 'firing' ? 1 : 0);
    const fields = { alert: event.rule, severity: event.severity, signal: event.signal, value: event.value, threshold: event.threshold, resolve: event.resolve };
    if (event.status === 'firing') log.warn(fields, `alert firing: ${event.rule}: ${event.description}`);
    else log.info({ ...fields, firedForMs: event.at - event.firedAt }, `alert resolved: ${event.rule}`);
    webhook?.send(event, listening.url);
    feed.broadcast('alert', { event, active: engine.active() });
  });

  const sample = async (now: number): Promise<void> => {
    const snapshot = await sampler.take(now);
    const { event_loop_lag_p99_seconds: p99, event_loop_lag_max_seconds: max } = snapshot.gauges;
    if (p99 !== undefined) lagP99.set(p99);
    if (max !== undefined) lagMax.set(max);
    engine.evaluate(sampler, now);
    const point = toPoint(sampler.lastInterval());
    points.push(point);
    if (points.length > DASHBOARD_POINTS) points.shift();
    // Per-topic traffic is counted only while someone is watching (the first sample after
    // that starts has subscriber counts but no traffic yet).
    if (feed.size > 0) {
      if (!activity.enabled) activity.start(now);
      busiest = activity.take(BUSIEST_TOPICS, now);
      feed.broadcast('sample', { point, busiest, active: engine.active() });
    } else {
      activity.enabled = false;
      busiest = [];
    }
  };

  // The sweep may run more often than the sample interval (tests shorten both); a 10%
  // tolerance keeps a 1 s sweep from skipping every other 1 s sample on timer jitter.
  let lastSampleAt = 0;
  let sampling = false;
  lifecycle.onSweep((now) => {
    if (sampling || now - lastSampleAt < intervalMs * 0.9) return;
    sampling = true;
    lastSampleAt = now;
    sample(now)
      .catch((err: unknown) => log.error({ err }, 'monitor sample failed'))
      .finally(() => (sampling = false));
  });

  router.on('GET', '/metrics', async ({ res }) => {
    const text = await metrics.registry.metrics();
    writeHead(res, 200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
    res.end(text);
  });

  // The alert list and the feed name channels (user and content ids): service_role only.
  // /metrics and the probes carry no user data and stay open for scrapers.
  router.on(
    'GET',
    '/api/alerts',
    countingErrors(metrics, async ({ req, res, query }) => {
      requireServiceRole(await authenticate(deps.auth, req, query), '/api/alerts');
      sendJson(res, 200, { active: engine.active(), recent: engine.recent(), rules: engine.rules, webhook: webhook !== undefined });
    }),
  );

  registerDashboardPage(router);
  router.on(
    'GET',
    '/dashboard/feed',
    countingErrors(metrics, (ctx) => feed.open(ctx)),
  );

  lifecycle.onShutdown(async () => {
    processStats.stop();
    await webhook?.flush(2000);
  });
}
