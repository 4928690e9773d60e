// The live progress line: connections open, messages/s, p99, errors, the server's CPU
// and memory and the generator's own lag, redrawn in place on a terminal and printed as
// plain lines every few seconds when stderr is a file or a pipe (CI logs).
import type { LiveStatus } from './live-status.js';

const fmt = (n: number): string => n.toLocaleString('en-US');

/** The status as separate fields, so a narrow terminal can wrap between them instead of cutting the last ones off. */
export function statusParts(s: LiveStatus): string[] {
  // After the planned duration the run drains its last messages: the clock stops at the duration.
  const clock = s.elapsedS <= s.durationS ? `${String(s.elapsedS).padStart(3)}s/${s.durationS}s` : `${s.durationS}s/${s.durationS}s draining`;
  const parts = [`[${s.name}] ${clock}`];
  if (s.ssePlanned) parts.push(`sse ${fmt(s.sseOpen)}/${fmt(s.ssePlanned)} open`);
  if (s.realtimePlanned) parts.push(`realtime ${fmt(s.realtimeJoined)}/${fmt(s.realtimePlanned)} joined`);
  parts.push(`${fmt(s.messagesPerSec)} msg/s`);
  parts.push(`p99 ${s.p99Ms === null ? '–' : `${s.p99Ms.toFixed(1)} ms`}`);
  parts.push(`errors ${fmt(s.errors)}`);
  if (s.serverCpuPct !== null || s.serverRssMb !== null) parts.push(`server ${s.serverCpuPct === null ? '–' : `${s.serverCpuPct.toFixed(0)}%`} CPU ${s.serverRssMb ?? '–'} MB`);
  if (s.generatorLagP99Ms !== null) parts.push(`gen lag ${s.generatorLagP99Ms.toFixed(0)} ms`);
  return parts;
}

export function statusLine(s: LiveStatus): string {
  return statusParts(s).join(' | ');
}

/** Greedily packs fields into lines of at most `width` characters (a field longer than that gets a line of its own, cut). */
export function wrapParts(parts: readonly string[], width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const part of parts) {
    const next = line ? `${line} | ${part}` : part;
    if (next.length <= width || !line) line = next;
    else {
      lines.push(line);
      line = part;
    }
  }
  if (line) lines.push(line);
  return lines.map((l) => l.slice(0, width));
}

export class ProgressReporter {
  private lastPlainAt = 0;
  /** Lines of the status block currently on the terminal (0: nothing drawn). */
  private drawnLines = 0;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEveryMs = 5000,
  ) {}

  update(s: LiveStatus): void {
    if (this.stream.isTTY) {
      // Redrawn in place: back to the block's first line, then every line cleared and rewritten.
      const lines = wrapParts(statusParts(s), Math.max(20, (this.stream.columns ?? 120) - 1));
      let out = this.drawnLines > 1 ? `\x1b[${this.drawnLines - 1}A` : '';
      out += lines.map((l) => `\r\x1b[2K${l}`).join('\n');
      // A block that shrank leaves no stale line below it.
      if (this.drawnLines > lines.length) out += '\x1b[J';
      this.stream.write(out);
      this.drawnLines = lines.length;
      return;
    }
    const now = Date.now();
    if (now - this.lastPlainAt < this.plainEveryMs) return;
    this.lastPlainAt = now;
    this.stream.write(statusLine(s) + '\n');
  }

  /** Ends the in-place block so the next output starts on a fresh line. */
  done(): void {
    if (this.drawnLines) this.stream.write('\n');
    this.drawnLines = 0;
  }
}
