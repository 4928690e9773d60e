// The change feed on the embedded PGlite database (changes-suite.ts), plus what is specific
// to running it in a worker thread.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeFeedSuite } from './changes-suite.js';
import { ChangesHarness } from '../helpers/changes.js';
import { startGateway } from '../helpers/gateway.js';

describe('change feed on pglite', () => changeFeedSuite('pglite'));

describe('embedded database worker', () => {
  let h: ChangesHarness;
  beforeAll(async () => {
    h = await ChangesHarness.create('pglite');
    await h.start();
  });
  afterAll(async () => h?.close());

  it('stops at once when shut down during its first start, and starts cleanly the next time', async () => {
    const fresh = await ChangesHarness.create('pglite');
    try {
      const gw = await startGateway({ dbStart: 'eager', dataDir: fresh.embeddedDir });
      const stopping = Date.now();
      await gw.stop(); // initdb takes seconds; shutdown must not wait for it
      expect(Date.now() - stopping).toBeLessThan(1500);
      await fresh.start();
      const [{ v }] = (await fresh.sql<{ v: number }>('select max(version)::int as v from realtime.fanout_migrations')) as [{ v: number }];
      expect(v).toBeGreaterThan(0);
    } finally {
      await fresh.close();
    }
  });

  it('keeps the gateway thread free while the database works', async () => {
    const { db } = await h.parts();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = Date.now();
    await db.query('select count(*) from generate_series(1, 2000000)');
    const elapsed = Date.now() - started;
    clearInterval(timer);
    expect(elapsed).toBeGreaterThan(100);
    // On the main thread the query would block every timer until it finished.
    expect(ticks).toBeGreaterThan(5);
  });

  it('rolls a failed transaction back and commits a good one, with other queries waiting their turn', async () => {
    const { db } = await h.parts();
    await db.exec('create table tx_probe (id int primary key)');
    await expect(
      db.transaction(async (tx) => {
        await tx.query('insert into tx_probe values (1)');
        await tx.query('insert into tx_probe values (1)'); // duplicate key
      }),
    ).rejects.toMatchObject({ code: '23505' });
    const outside = db.query<{ n: number }>('select count(*)::int as n from tx_probe');
    await db.transaction(async (tx) => {
      await tx.query('insert into tx_probe values (2)');
      await tx.query('insert into tx_probe values (3)');
    });
    expect((await outside).rows[0]!.n).toBe(0);
    expect((await db.query<{ ids: number[] }>('select array_agg(id order by id) as ids from tx_probe')).rows[0]!.ids).toEqual([2, 3]);
  });
});
