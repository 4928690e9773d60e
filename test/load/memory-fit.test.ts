// Memory per connection is a fitted slope of RSS against open connections — and only a
// measurement when the fit says so. A slope with r² near 0, from a process that did not
// grow, over too few samples or too narrow a range is "not measured": it yields no metric,
// so no threshold can pass on it.
import { describe, expect, it } from 'vitest';
import { linearFit } from '../../src/load/fit.js';
import { judgeMemoryFit } from '../../src/load/server-resources.js';
import { evaluateThresholds, resolveThresholds } from '../../src/load/thresholds.js';

const points = (f: (x: number) => number, xs: number[]) => xs.map((x) => ({ x, y: f(x) }));
const span = [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000];

describe('memory per connection', () => {
  it('is measured when RSS follows connections: a good fit over a real rise', () => {
    // 8 KB per connection from 100 MB, a little noise.
    const pts = points((x) => 100 + (x * 8) / 1024 + (x % 2000 === 0 ? 0.3 : -0.3), span);
    const fit = linearFit(pts)!;
    expect(judgeMemoryFit(fit, pts.map((p) => p.y))).toEqual({ measured: true, reason: null });
    expect(fit.slope * 1024).toBeCloseTo(8, 0);
  });

  it('is not measured when r² is near 0 (GC moved RSS, not connections)', () => {
    const pts = points((x) => 100 + ((x * 7919) % 13), span);
    const fit = linearFit(pts)!;
    expect(fit.r2!).toBeLessThan(0.5);
    expect(judgeMemoryFit(fit, pts.map((p) => p.y))).toMatchObject({ measured: false, reason: expect.stringMatching(/did not follow the connection count \(r² 0\.\d+ < 0\.5\)/) });
  });

  it('is not measured from a process that did not grow, or shrank', () => {
    const flat = points((x) => 100 + x / 1e7, span); // rises 0.0007 MB: a perfect line through nothing
    const fit = linearFit(flat)!;
    expect(fit.r2).toBeGreaterThan(0.99);
    expect(judgeMemoryFit(fit, flat.map((p) => p.y)).reason).toMatch(/RSS moved by only 0 MB over the run \(under 1 MB\)/);
    const shrinking = points((x) => 200 - x / 100, span);
    expect(judgeMemoryFit(linearFit(shrinking), shrinking.map((p) => p.y)).reason).toMatch(/did not grow with connections/);
  });

  it('is not measured over a few dozen connections or a handful of samples', () => {
    const narrow = points((x) => 100 + x / 10, [0, 10, 20, 30, 40, 50]);
    expect(judgeMemoryFit(linearFit(narrow), narrow.map((p) => p.y)).reason).toMatch(/varied over only 50 \(under 200\)/);
    const few = points((x) => 100 + x / 100, [0, 1000, 2000, 3000]);
    expect(judgeMemoryFit(linearFit(few), few.map((p) => p.y)).reason).toMatch(/only 4 server samples/);
    expect(judgeMemoryFit(null, []).reason).toMatch(/did not vary/);
  });

  it('a figure that is not measured judges as no data, never as a pass', () => {
    const [t] = evaluateThresholds(resolveThresholds([]).filter((x) => x.metric === 'server.memory_per_connection_mb'), { 'server.memory_per_connection_mb': null });
    expect(t!.status).toBe('no-data');
    expect(evaluateThresholds(resolveThresholds(['server.memory_per_connection_mb<10'], false), {})[0]!.status).toBe('no-data');
  });
});
