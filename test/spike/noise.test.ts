// Run-to-run noise and the comparisons that must respect it: a difference counts only when
// it is over the rule's budget AND beyond the spread of repeated runs.
import { describe, expect, it } from 'vitest';
import { beyondNoise, compareToBaseline, median, spreadOf } from '../../src/spike/noise.js';

const budget = (solo: number): number => Math.max(solo * 1.5, solo + 50);

describe('run-to-run noise', () => {
  it('summarizes repeated runs as median and spread (unknown with one run)', () => {
    expect(spreadOf('sse-100', 'p99', [12, 7, 9])).toEqual({ scenario: 'sse-100', figure: 'p99', values: [12, 7, 9], median: 9, spread: 5 });
    expect(spreadOf('sse-100', 'p99', [9]).spread).toBeNull();
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
  });

  it('does not call a difference inside the spread worse, even over the budget', () => {
    const solo = spreadOf('sse-100', 'p99', [60, 100, 180]);
    const c = compareToBaseline(solo, 160, budget);
    expect(c.verdict).toBe('cannot tell');
    expect(c.why).toMatch(/over the budget \(150 ms\), but the difference \(60 ms\) is within the run-to-run spread \(120 ms over 3 runs\)/);
  });

  it('calls a difference over the budget and outside the spread worse', () => {
    const solo = spreadOf('sse-100', 'p99', [98, 100, 102]);
    expect(compareToBaseline(solo, 160, budget).verdict).toBe('worse');
    // ... and a difference under the budget is not worse, however far outside the spread.
    expect(compareToBaseline(solo, 140, budget).verdict).toBe('not worse');
  });

  it('cannot tell without repeated runs, or without data', () => {
    expect(compareToBaseline(spreadOf('x', 'p99', [100]), 400, budget)).toMatchObject({ verdict: 'cannot tell', why: expect.stringMatching(/ran once/) });
    expect(compareToBaseline(spreadOf('x', 'p99', []), 400, budget).verdict).toBe('cannot tell');
    expect(compareToBaseline(spreadOf('x', 'p99', [1, 2]), null, budget).verdict).toBe('cannot tell');
  });

  it('counts the observed side\'s own spread as noise too', () => {
    const solo = spreadOf('rt-20x5', 'presence p99', [10, 11, 12]);
    expect(compareToBaseline(solo, spreadOf('rt-presence-100', 'presence p99', [500, 520, 540]), () => 300).verdict).toBe('worse');
    expect(compareToBaseline(solo, spreadOf('rt-presence-100', 'presence p99', [100, 520, 1000]), () => 300).verdict).toBe('cannot tell');
    expect(beyondNoise(spreadOf('a', 'f', [10, 12]), spreadOf('b', 'f', [12, 13]))).toBe(false);
    expect(beyondNoise(spreadOf('a', 'f', [10, 12]), spreadOf('b', 'f', [20, 21]))).toBe(true);
    expect(beyondNoise(spreadOf('a', 'f', [10]), spreadOf('b', 'f', [20]))).toBeNull();
  });
});
