// Samples the server under test once a second through the run: CPU %, RSS, open files
// and heap from /proc/<pid> when the server is a local process, and event-loop lag,
// heap and per-transport connections from its Prometheus endpoint when it has one
// (Fanout's /metrics: prom-client's process_* and nodejs_* series plus fanout_*). Each
// source fills what it can; what neither offers stays null and is reported as such.
import { readFile, readdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';

export interface ServerSample {
  /** Wall-clock ms. */
  t: number;
  cpuPct: number | null;
  rssBytes: number | null;
  openFiles: number | null;
  eventLoopLagP99Ms: number | null;
  heapUsedBytes: number | null;
  /** Open connections by transport as the server counts them. */
  connections: Record<string, number> | null;
  /** Whole-machine CPU busy %, for context (a shared machine skews everything). */
  machineCpuPct: number | null;
}

export interface SamplerOptions {
  pid?: number;
  metricsUrl?: string;
  metricsHeaders?: Record<string, string>;
  intervalMs?: number;
}

/** One sample of a Prometheus text exposition: metric name to its series. */
export type PromSeries = Map<string, { labels: Record<string, string>; value: number }[]>;

const LINE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/;
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheusText(text: string): PromSeries {
  const out: PromSeries = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = LINE_RE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2]) for (const l of m[2].matchAll(LABEL_RE)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    const value = Number(m[3]);
    if (Number.isNaN(value)) continue;
    let list = out.get(m[1]!);
    if (!list) out.set(m[1]!, (list = []));
    list.push({ labels, value });
  }
  return out;
}

function firstValue(series: PromSeries, name: string): number | null {
  return series.get(name)?.[0]?.value ?? null;
}

let clockTicks: number | undefined;
function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime of a process in seconds, from /proc/<pid>/stat (fields 14 and 15, after the parenthesized name). */
export function parseProcStatCpuSeconds(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14 → rest[11], stime field 15 → rest[12].
  return (Number(rest[11]) + Number(rest[12])) / clkTck();
}

export class ServerSampler {
  readonly samples: ServerSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private prevCpu: { at: number; seconds: number } | undefined;
  private prevMachine: { busy: number; total: number } | undefined;
  private inFlight = false;
  /** Why a source could not be read (reported once, not per sample). */
  readonly problems = new Set<string>();

  constructor(private readonly opts: SamplerOptions) {}

  get hasSource(): boolean {
    return this.opts.pid !== undefined || this.opts.metricsUrl !== undefined;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sampleOnce(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample and appends it; overlapping calls are skipped so a slow server is not sampled twice at once. */
  async sampleOnce(): Promise<ServerSample | undefined> {
    if (this.inFlight) return undefined;
    this.inFlight = true;
    try {
      const t = Date.now();
      const sample: ServerSample = { t, cpuPct: null, rssBytes: null, openFiles: null, eventLoopLagP99Ms: null, heapUsedBytes: null, connections: null, machineCpuPct: await this.machineCpu() };
      let cpuSeconds: number | null = null;
      if (this.opts.pid !== undefined) cpuSeconds = await this.fromProc(this.opts.pid, sample);
      if (this.opts.metricsUrl) {
        const fromMetrics = await this.fromMetrics(this.opts.metricsUrl, sample);
        cpuSeconds ??= fromMetrics;
      }
      if (cpuSeconds !== null) {
        if (this.prevCpu) sample.cpuPct = Math.max(0, ((cpuSeconds - this.prevCpu.seconds) / Math.max(0.001, (t - this.prevCpu.at) / 1000)) * 100);
        this.prevCpu = { at: t, seconds: cpuSeconds };
      }
      this.samples.push(sample);
      return sample;
    } finally {
      this.inFlight = false;
    }
  }

  private async fromProc(pid: number, sample: ServerSample): Promise<number | null> {
    try {
      const [stat, status, fds] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8'), readdir(`/proc/${pid}/fd`).catch(() => null)]);
      const rss = /VmRSS:\s+(\d+)\s+kB/.exec(status);
      if (rss) sample.rssBytes = Number(rss[1]) * 1024;
      if (fds) sample.openFiles = fds.length;
      return parseProcStatCpuSeconds(stat);
    } catch (err) {
      this.problems.add(`cannot read /proc/${pid}: ${(err as Error).message}`);
      return null;
    }
  }

  private async fromMetrics(url: string, sample: ServerSample): Promise<number | null> {
    try {
      const res = await fetch(url, { headers: this.opts.metricsHeaders, signal: AbortSignal.timeout(2000) });
      if (!res.ok) {
        this.problems.add(`${url} answered ${res.status}`);
        return null;
      }
      const series = parsePrometheusText(await res.text());
      sample.rssBytes ??= firstValue(series, 'process_resident_memory_bytes');
      sample.openFiles ??= firstValue(series, 'process_open_fds');
      sample.heapUsedBytes = firstValue(series, 'nodejs_heap_size_used_bytes');
      const lag = firstValue(series, 'nodejs_eventloop_lag_p99_seconds');
      if (lag !== null) sample.eventLoopLagP99Ms = lag * 1000;
      const conns = series.get('fanout_connections');
      if (conns) sample.connections = Object.fromEntries(conns.map((s) => [s.labels.transport ?? 'all', s.value]));
      return firstValue(series, 'process_cpu_seconds_total');
    } catch (err) {
      this.problems.add(`cannot scrape ${url}: ${(err as Error).message}`);
      return null;
    }
  }

  private async machineCpu(): Promise<number | null> {
    try {
      const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!;
      const v = line.trim().split(/\s+/).slice(1).map(Number);
      const idle = (v[3] ?? 0) + (v[4] ?? 0);
      const total = v.reduce((a, b) => a + b, 0);
      const busy = total - idle;
      const prev = this.prevMachine;
      this.prevMachine = { busy, total };
      if (!prev || total === prev.total) return null;
      return ((busy - prev.busy) / (total - prev.total)) * 100;
    } catch {
      return null;
    }
  }
}
