// The roll call's rule (roll-call.ts), through the recorder a worker keeps: a subscriber
// marked live before publishing began is owed each of its streams from the first owed
// number, including a stream it never heard from; one that joined later, dropped or left
// keeps the baseline rule; presence is never owed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Recorder } from '../../src/load/recorder.js';
import { DocNumbering } from '../../src/load/drivers/realtime-streams.js';
import type { PublishedStreams } from '../../src/load/plan.js';
import { WorkerPool } from '../../src/load/pool.js';
import { rollCallAt, type RollCallTiming } from '../../src/load/roll-call.js';

const lostOf = (rec: Recorder, published: PublishedStreams, kind: string): number => rec.final(Date.now(), published, {}).sequences[kind]?.lost ?? 0;

describe('the roll call', () => {
  it('charges a marked subscriber for the first numbers it never received, and not a late joiner', () => {
    const rec = new Recorder(0);
    rec.rollCall.mark('s0.0', 'sse', 'user:a', 1);
    for (const seq of [3, 4, 5]) rec.tracker('s0.0', 'sse', 'user:a', true).observe(seq);
    // Joined after publishing began: its first message is its baseline.
    for (const seq of [3, 4, 5]) rec.tracker('s1.0', 'sse', 'user:a', true).observe(seq);
    expect(lostOf(rec, { 'user:a': { last: 5, failed: [] } }, 'sse')).toBe(2);
  });

  it('does not charge numbers that were never published, and counts a late first number as reordered', () => {
    const rec = new Recorder(0);
    rec.rollCall.mark('s0.0', 'sse', 'user:a', 1);
    const t = rec.tracker('s0.0', 'sse', 'user:a', true);
    expect(t.observe(3)).toBe('gap');
    expect(t.observe(1)).toBe('reordered');
    const counts = rec.final(Date.now(), { 'user:a': { last: 3, failed: [] } }, {}).sequences.sse!;
    expect(counts).toMatchObject({ lost: 1, reordered: 1, unique: 2 });
    const failed = new Recorder(0);
    failed.rollCall.mark('s0.0', 'sse', 'user:a', 1);
    failed.tracker('s0.0', 'sse', 'user:a', true).observe(3);
    expect(lostOf(failed, { 'user:a': { last: 3, failed: [1, 2] } }, 'sse')).toBe(0);
  });

  it('charges a marked subscriber that heard nothing at all for everything published, minus failed sends', () => {
    const rec = new Recorder(0);
    rec.rollCall.mark('r1.0', 'realtime.comments', 'c:p0', 1);
    expect(lostOf(rec, { 'c:p0': { last: 6, failed: [2] } }, 'realtime.comments')).toBe(5);
    // Nothing published on the stream, or nothing at all: nothing owed.
    expect(lostOf(rec, { 'c:p0': { last: 0, failed: [] } }, 'realtime.comments')).toBe(0);
    expect(lostOf(rec, {}, 'realtime.comments')).toBe(0);
  });

  it('owes nothing new once the subscriber dropped or left, and nothing to presence', () => {
    const rec = new Recorder(0);
    rec.rollCall.mark('r1.0', 'realtime.comments', 'c:p0', 1);
    rec.rollCall.mark('r2.0', 'realtime.comments', 'c:p0', 1);
    rec.rollCall.mark('r3.0', 'realtime.comments', 'c:p0', 1);
    rec.rollCall.mark('r3.0', 'realtime.broadcast', 'd:p0');
    rec.dropped('r1.0');
    rec.left('r2.0');
    // A failed comments subscription unmarks that kind only.
    rec.rollCall.unmark('r3.0', 'realtime.comments');
    expect(rec.rollCall.size).toBe(1);
    // After the drop its first message is a baseline again.
    rec.tracker('r1.0', 'realtime.comments', 'c:p0', false).observe(4);
    rec.tracker('r3.0', 'realtime.presence', 'p:p0:u1', false).observe(7);
    const sequences = rec.final(Date.now(), { 'c:p0': { last: 4, failed: [] }, 'p:p0:u1': { last: 7, failed: [] } }, {}).sequences;
    expect(sequences['realtime.comments']?.lost ?? 0).toBe(0);
    expect(sequences['realtime.presence']!.lost).toBe(0);
  });

  it('owes document broadcasts from the number their stamps (or their sender) say the roll call closed at', () => {
    const rec = new Recorder(0);
    rec.rollCall.mark('r1.0', 'realtime.broadcast', 'd:p0');
    rec.rollCall.mark('r2.0', 'realtime.broadcast', 'd:p0');
    rec.rollCall.mark('r3.0', 'realtime.broadcast', 'd:p0');
    // r1's first message was sent after the close, which happened at 5: 5 and 6 are owed.
    rec.tracker('r1.0', 'realtime.broadcast', 'd:p0', false, 5).observe(7);
    // r2's first message was sent before the close (no stamp): a baseline, as before.
    rec.tracker('r2.0', 'realtime.broadcast', 'd:p0', false, undefined).observe(3);
    rec.tracker('r2.0', 'realtime.broadcast', 'd:p0', false, 5).observe(7);
    // r3 heard nothing: the sender's published record says where the owed numbers begin.
    const published = { 'd:p0': { last: 9, failed: [6], owedFrom: 5 } };
    const counts = rec.final(Date.now(), published, {}).sequences['realtime.broadcast']!;
    // 6 was never sent. r1: 5 missing, 8 and 9 at the tail; r2: 4 and 5 (its gap), 8 and 9; r3: 5, 7, 8 and 9.
    expect(counts.lost).toBe(3 + 4 + 4);
    // A sender whose roll call never closed owes nothing to a subscriber that heard nothing.
    const unclosed = new Recorder(0);
    unclosed.rollCall.mark('r3.0', 'realtime.broadcast', 'd:p0');
    expect(lostOf(unclosed, { 'd:p0': { last: 9, failed: [] } }, 'realtime.broadcast')).toBe(0);
  });
});

describe('a user’s document numbering', () => {
  it('stamps the first number sent after the roll call closed, and reports it with what was published', () => {
    const docs = new DocNumbering('d:p0');
    expect(docs.published()).toEqual({});
    expect(docs.next(100)).toEqual({ s: 'd:p0', seq: 1, t: 100 });
    expect(docs.next(200)).toEqual({ s: 'd:p0', seq: 2, t: 200 });
    docs.rollCallClosed();
    docs.rollCallClosed(); // once closed, it stays at the first close
    const third = docs.next(300);
    expect(third).toEqual({ s: 'd:p0', seq: 3, t: 300, o: 3 });
    docs.fail(third.seq);
    expect(docs.next(400).o).toBe(3);
    expect(docs.published()).toEqual({ 'd:p0': { last: 4, failed: [3], owedFrom: 3 } });
  });

  it('without a roll call, reports no owed number', () => {
    const docs = new DocNumbering('d:p0');
    docs.next(1);
    expect(docs.published()).toEqual({ 'd:p0': { last: 1, failed: [] } });
  });
});

// Taking the roll call across real worker processes (rollCallAt): every worker answers, and
// one that cannot answer (stopped with SIGSTOP) fails it within its timeout, naming the
// worker — the coordinator then marks the run INVALID before anything is published.
describe('taking the roll call across the worker pool', () => {
  let pool: WorkerPool;
  beforeAll(async () => {
    pool = await WorkerPool.start(2);
    // A plan with no connections: each worker learns its index and holds an (empty) run.
    const planned = pool.collect('planned', 10_000);
    for (let i = 0; i < pool.size; i++) pool.send(i, { type: 'plan', plan: { runId: 'roll-call-test', workerIndex: i, workers: pool.size, localAddresses: null, tickMs: 1000 } });
    await planned;
  }, 30_000);
  afterAll(async () => {
    for (const pid of pool?.pids ?? []) process.kill(pid, 'SIGCONT');
    await pool?.close();
  });

  const timing = (over: Partial<RollCallTiming> = {}): RollCallTiming => ({
    at: Date.now(),
    endAt: Date.now() + 60_000,
    stopped: new AbortController().signal,
    aborting: new Promise<void>(() => undefined),
    timeoutMs: 2000,
    ...over,
  });

  it('counts the answers of every worker (no subscribers in an empty plan)', async () => {
    await expect(rollCallAt(pool, ['sse'], timing())).resolves.toBe(0);
  });

  it('is not taken when it would fall at or after the end of the run, or publishing stopped first', async () => {
    await expect(rollCallAt(pool, ['sse'], timing({ at: Date.now() + 1000, endAt: Date.now() + 500 }))).resolves.toBeUndefined();
    const stop = new AbortController();
    const pending = rollCallAt(pool, ['sse'], timing({ at: Date.now() + 30_000, stopped: stop.signal }));
    stop.abort();
    await expect(pending).resolves.toBeUndefined();
  });

  it('fails within its timeout when a worker does not answer, naming it', async () => {
    const stalled = pool.pids[1]!;
    process.kill(stalled, 'SIGSTOP');
    try {
      const started = Date.now();
      await expect(rollCallAt(pool, ['sse'], timing({ timeoutMs: 500 }))).rejects.toThrow(/timed out after 500 ms waiting for "present" from 1 of 2 load workers \(1 on local\)/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      process.kill(stalled, 'SIGCONT');
    }
    // Answering again once it runs: the pool is still usable.
    await expect(rollCallAt(pool, ['sse'], timing())).resolves.toBe(0);
  });
});
