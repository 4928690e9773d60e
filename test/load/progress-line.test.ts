// The live progress of `fanout load`: on an 80-column terminal every field stays visible
// (the block wraps between fields instead of cutting the server's CPU/RSS and the
// generator's lag off), the clock never passes the planned duration, and a redraw
// replaces the block in place.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProgressReporter, statusLine, wrapParts } from '../../src/load/progress.js';
import type { LiveStatus } from '../../src/load/live-status.js';

const status = (over: Partial<LiveStatus> = {}): LiveStatus => ({
  name: 'hybrid',
  elapsedS: 12,
  durationS: 20,
  sseOpen: 10_000,
  ssePlanned: 10_000,
  realtimeJoined: 4_000,
  realtimePlanned: 4_000,
  messagesPerSec: 123_456,
  p99Ms: 123.4,
  errors: 0,
  serverCpuPct: 87,
  serverRssMb: 512,
  generatorLagP99Ms: 3,
  ...over,
});

/** A terminal of `columns` that records what is written. */
function terminal(columns: number): NodeJS.WriteStream & { text: string } {
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.text += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream & { text: string };
  out.text = '';
  Object.assign(out, { isTTY: true, columns });
  return out;
}

const ESC = String.fromCharCode(27);
const CURSOR_UP = new RegExp(`${ESC}\\[\\d+A`);

/** The last block drawn, its lines without the clear-line codes. */
const lastBlock = (text: string): string[] => {
  const frames = text.split(CURSOR_UP);
  return frames
    .at(-1)!
    .replaceAll(`${ESC}[J`, '')
    .split('\n')
    .map((l) => l.replace(`\r${ESC}[2K`, ''));
};

describe('the load progress line', () => {
  it('keeps every field on an 80-column terminal, wrapping between fields', () => {
    const tty = terminal(80);
    new ProgressReporter(tty).update(status());
    const lines = lastBlock(tty.text);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(79);
    const shown = lines.join(' | ');
    for (const field of ['sse 10,000/10,000 open', 'realtime 4,000/4,000 joined', '123,456 msg/s', 'p99 123.4 ms', 'errors 0', 'server 87% CPU 512 MB', 'gen lag 3 ms']) expect(shown).toContain(field);
  });

  it('redraws the block in place: back up over its earlier lines, never below them', () => {
    const tty = terminal(80);
    const reporter = new ProgressReporter(tty);
    reporter.update(status());
    const firstLines = lastBlock(tty.text).length;
    reporter.update(status({ elapsedS: 13 }));
    expect(tty.text).toContain(`${ESC}[${firstLines - 1}A`);
    expect(lastBlock(tty.text)[0]).toContain(' 13s/20s');
    reporter.done();
    expect(tty.text.endsWith('\n')).toBe(true);
  });

  it('stops the clock at the planned duration while the run drains', () => {
    expect(statusLine(status({ elapsedS: 21, durationS: 20 }))).toMatch(/^\[hybrid\] 20s\/20s draining \|/);
    expect(statusLine(status({ elapsedS: 20, durationS: 20 })).startsWith('[hybrid]  20s/20s |')).toBe(true);
  });

  it('packs fields greedily and keeps one line when they fit', () => {
    expect(wrapParts(['aa', 'bb', 'cc'], 80)).toEqual(['aa | bb | cc']);
    expect(wrapParts(['aaaa', 'bbbb', 'cccc'], 11)).toEqual(['aaaa | bbbb', 'cccc']);
  });
});
