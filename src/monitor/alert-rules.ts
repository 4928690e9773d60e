// Alert rules: the built-in set, and the operator's JSON file (`--alerts <file>` /
// FANOUT_ALERTS) that adds to, tunes or disables them, validated with zod at start-up.
// A bad file stops the gateway with a message naming the file, the rule and the field.
//
// File shape:
//   {
//     "defaults": true,                // keep the built-in rules (default true)
//     "rules": [
//       { "name": "sse_connections_high", "threshold": 500 },              // tunes a built-in rule
//       { "name": "event_loop_lag_high", "enabled": false },               // disables one
//       { "name": "ws_flood", "signal": "messages_in_per_second", "op": ">",
//         "threshold": 5000, "resolve": 4000, "for": "30s", "window": "1m",
//         "severity": "critical", "description": "inbound message flood" }  // adds one
//     ],
//     "webhook": { "url": "http://alerts.internal/hook", "timeoutMs": 5000, "retries": 2,
//                  "headers": { "authorization": "Bearer ..." } }
//   }
// Durations are milliseconds or strings such as "500ms", "30s", "5m", "1h".
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../core/config.js';
import { SIGNAL_NAMES, type Aggregate, type SignalName } from './signals.js';

export type Comparison = '>' | '>=' | '<' | '<=';
export type Severity = 'info' | 'warning' | 'critical';

export interface AlertRule {
  name: string;
  signal: SignalName;
  op: Comparison;
  /** Fires when `value op threshold` has held for `forMs`. */
  threshold: number;
  /** Resolves when the value is back on the safe side of this (defaults to `threshold`) for `resolveForMs`. */
  resolve: number;
  forMs: number;
  resolveForMs: number;
  /** Span of history the signal is computed over (rates, percentiles, gauge aggregation). */
  windowMs: number;
  aggregate: Aggregate | undefined;
  severity: Severity;
  description: string;
}

export interface WebhookConfig {
  url: string;
  timeoutMs: number;
  retries: number;
  headers: Record<string, string>;
}

export interface AlertConfig {
  rules: AlertRule[];
  webhook: WebhookConfig | undefined;
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const MAX_WINDOW_MS = 3_600_000;

const duration = z
  .union([z.number().int().min(0), z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/, 'must be milliseconds or a string like "30s", "5m", "1h"')])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const [, n, unit] = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v)!;
    return Math.round(Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS]);
  });

const ruleSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.:-]{1,80}$/, 'must be 1-80 letters, digits or _ . : -'),
    signal: z.enum(SIGNAL_NAMES),
    op: z.enum(['>', '>=', '<', '<=']).default('>'),
    threshold: z.number().finite(),
    resolve: z.number().finite().optional(),
    for: duration.default(0),
    resolveFor: duration.default(0),
    window: duration.pipe(z.number().min(1).max(MAX_WINDOW_MS, `must be at most ${MAX_WINDOW_MS / 60_000} minutes`)).default(60_000),
    aggregate: z.enum(['last', 'avg', 'min', 'max']).optional(),
    severity: z.enum(['info', 'warning', 'critical']).default('warning'),
    description: z.string().max(500).optional(),
    enabled: z.boolean().default(true),
  })
  .strict()
  .superRefine((r, ctx) => {
    const resolve = r.resolve ?? r.threshold;
    const above = r.op === '>' || r.op === '>=';
    if (above ? resolve > r.threshold : resolve < r.threshold) {
      ctx.addIssue({
        code: 'custom',
        path: ['resolve'],
        message: `must be ${above ? 'at or below' : 'at or above'} the threshold (${r.threshold}) for op "${r.op}": the alert resolves on the safe side`,
      });
    }
  });

const webhookSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
    timeoutMs: z.number().int().min(100).max(60_000).default(5000),
    retries: z.number().int().min(0).max(10).default(2),
    headers: z.record(z.string(), z.string()).default({}),
  })
  .strict();

const fileSchema = z
  .object({
    defaults: z.boolean().default(true),
    rules: z.array(z.unknown()).default([]),
    webhook: webhookSchema.optional(),
  })
  .strict();

type RuleInput = z.input<typeof ruleSchema>;

/**
 * The rules an operator expects out of the box. The first is the seed's
 * (`RealtimeMonitor`: more than 150 SSE connections); the latency one uses the seed's
 * delivery target (< 500 ms).
 */
export const DEFAULT_RULES: RuleInput[] = [
  {
    name: 'sse_connections_high',
    signal: 'connections_sse',
    op: '>',
    threshold: 150,
    resolve: 140,
    for: '10s',
    window: '10s',
    severity: 'warning',
    description: 'more than 150 SSE connections (the RealtimeMonitor threshold of the original spike design)',
  },
  {
    name: 'delivery_latency_p99_high',
    signal: 'delivery_latency_p99_seconds',
    op: '>',
    threshold: 0.5,
    resolve: 0.4,
    for: '1m',
    window: '1m',
    severity: 'warning',
    description: 'p99 publish-to-write latency above the 500 ms delivery target',
  },
  {
    name: 'error_rate_high',
    signal: 'errors_per_second',
    op: '>',
    threshold: 1,
    resolve: 0.5,
    for: '2m',
    window: '1m',
    severity: 'warning',
    description: 'more than one error per second (bad requests, auth failures, protocol and internal errors)',
  },
  {
    name: 'event_loop_lag_high',
    signal: 'event_loop_lag_p99_seconds',
    op: '>',
    threshold: 0.1,
    resolve: 0.05,
    for: '30s',
    window: '30s',
    severity: 'warning',
    description: 'event-loop delay p99 above 100 ms: every connection\'s latency grows with it',
  },
  {
    name: 'open_files_near_limit',
    signal: 'open_files_ratio',
    op: '>',
    threshold: 0.85,
    resolve: 0.8,
    for: '10s',
    window: '10s',
    severity: 'critical',
    description: 'open files above 85% of the process limit; new connections will fail at the limit',
  },
  {
    name: 'change_feed_lag_high',
    signal: 'change_feed_lag_p99_seconds',
    op: '>',
    threshold: 1,
    resolve: 0.5,
    for: '1m',
    window: '1m',
    severity: 'warning',
    description: 'database commit to dispatch p99 above 1 s',
  },
  {
    name: 'change_slot_lag_high',
    signal: 'change_slot_lag_seconds',
    op: '>',
    threshold: 300,
    resolve: 60,
    for: '1m',
    window: '1m',
    severity: 'critical',
    description: 'the replication slot of WAL capture has not confirmed WAL for over 5 minutes: PostgreSQL keeps every WAL file since (disk fills); is the change feed stuck or the slot abandoned? (`fanout migrate --drop-slot` removes one no gateway reads)',
  },
];

/** A bad alerts file; a ConfigError so `fanout serve` reports it like any bad option and exits 2. */
export class AlertConfigError extends ConfigError {
  override name = 'AlertConfigError';
}

/** Reads and validates the rules file (when given) and merges it over the built-in rules. */
export function loadAlertConfig(file: string | undefined): AlertConfig {
  if (!file) return buildAlertConfig({}, 'built-in rules');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AlertConfigError([`--alerts ${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AlertConfigError([`--alerts ${file}: not valid JSON (${(err as Error).message})`]);
  }
  return buildAlertConfig(raw, `--alerts ${file}`);
}

/** Validates an alerts document; every problem is reported, each naming its rule. */
export function buildAlertConfig(raw: unknown, source: string): AlertConfig {
  const top = fileSchema.safeParse(raw);
  if (!top.success) throw new AlertConfigError(top.error.issues.map((i) => `${source}: ${formatPath(i.path)}${i.message}`));
  const problems: string[] = [];
  const defaults = new Map(top.data.defaults ? DEFAULT_RULES.map((r) => [r.name, r]) : []);
  const merged = new Map<string, { input: unknown; label: string }>();
  for (const [name, rule] of defaults) merged.set(name, { input: rule, label: `built-in rule "${name}"` });

  top.data.rules.forEach((entry, i) => {
    const name = isRecord(entry) && typeof entry.name === 'string' ? entry.name : undefined;
    const label = name ? `rule "${name}" (rules[${i}])` : `rules[${i}]`;
    if (!isRecord(entry)) return void problems.push(`${source}: ${label}: must be an object`);
    if (!name) return void problems.push(`${source}: ${label}: name: required (a string)`);
    const previous = merged.get(name);
    if (previous && !defaults.has(name)) return void problems.push(`${source}: ${label}: duplicate name (already defined earlier in the file)`);
    // A built-in rule is tuned by naming it; a new threshold without a new resolve
    // level resolves at the new threshold rather than the built-in's old level.
    const base = defaults.get(name);
    const input = base ? { ...base, ...('threshold' in entry && !('resolve' in entry) ? { resolve: undefined } : {}), ...entry } : entry;
    defaults.delete(name);
    merged.set(name, { input, label });
  });

  const rules: AlertRule[] = [];
  for (const { input, label } of merged.values()) {
    const parsed = ruleSchema.safeParse(input);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push(`${source}: ${label}: ${formatPath(issue.path)}${issue.message}`);
      continue;
    }
    const r = parsed.data;
    if (!r.enabled) continue;
    rules.push({
      name: r.name,
      signal: r.signal,
      op: r.op,
      threshold: r.threshold,
      resolve: r.resolve ?? r.threshold,
      forMs: r.for,
      resolveForMs: r.resolveFor,
      windowMs: r.window,
      aggregate: r.aggregate,
      severity: r.severity,
      description: r.description ?? `${r.signal} ${r.op} ${r.threshold}`,
    });
  }
  if (problems.length) throw new AlertConfigError(problems);
  const w = top.data.webhook;
  return { rules, webhook: w ? { url: w.url, timeoutMs: w.timeoutMs, retries: w.retries, headers: w.headers } : undefined };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.length ? `${path.map(String).join('.')}: ` : '';
}
