// The live progress line: connections open, messages/s, p99, errors, the server's CPU
// and memory and the generator's own lag, redrawn in place on a terminal and printed as
// plain lines every few seconds when stderr is a file or a pipe (CI logs).
import type { LiveStatus } from './coordinator.js';

const fmt = (n: number): string => n.toLocaleString('en-US');

export function statusLine(s: LiveStatus): string {
  const parts = [`[${s.name}] ${String(s.elapsedS).padStart(3)}s/${s.durationS}s`];
  if (s.ssePlanned) parts.push(`sse ${fmt(s.sseOpen)}/${fmt(s.ssePlanned)} open`);
  if (s.realtimePlanned) parts.push(`realtime ${fmt(s.realtimeJoined)}/${fmt(s.realtimePlanned)} joined`);
  parts.push(`${fmt(s.messagesPerSec)} msg/s`);
  parts.push(`p99 ${s.p99Ms === null ? '–' : `${s.p99Ms.toFixed(1)} ms`}`);
  parts.push(`errors ${fmt(s.errors)}`);
  if (s.serverCpuPct !== null || s.serverRssMb !== null) parts.push(`server ${s.serverCpuPct === null ? '–' : `${s.serverCpuPct.toFixed(0)}%`} CPU ${s.serverRssMb ?? '–'} MB`);
  if (s.generatorLagP99Ms !== null) parts.push(`gen lag ${s.generatorLagP99Ms.toFixed(0)} ms`);
  return parts.join(' | ');
}

export class ProgressReporter {
  private lastPlainAt = 0;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEveryMs = 5000,
  ) {}

  update(s: LiveStatus): void {
    const line = statusLine(s);
    if (this.stream.isTTY) {
      const width = this.stream.columns ?? 120;
      this.stream.write(`\r\x1b[2K${line.slice(0, width - 1)}`);
      this.drawn = true;
      return;
    }
    const now = Date.now();
    if (now - this.lastPlainAt < this.plainEveryMs) return;
    this.lastPlainAt = now;
    this.stream.write(line + '\n');
  }

  /** Ends the in-place line so the next output starts on a fresh one. */
  done(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
