// The comments API while its PostgreSQL is unreachable: a 503 with Retry-After naming the
// database (not a 500), and the API works again once the database is back. The gateway
// reaches PostgreSQL through a TCP proxy the test can cut and block.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { createMigratedDatabase, type TestDatabase } from '../helpers/database.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

let db: TestDatabase;
let proxy: TcpProxy;
let gw: TestGateway;

beforeAll(async () => {
  db = await createMigratedDatabase('fanout_comments_down');
  proxy = await startTcpProxy(db.url);
  const viaProxy = new URL(db.url);
  viaProxy.port = new URL(proxy.url).port;
  gw = await startGateway({ databaseUrl: viaProxy.toString(), dbStart: 'eager' });
});

afterAll(async () => {
  await gw?.stop();
  await proxy?.close();
  await db?.drop();
});

async function postComment(): Promise<Response> {
  return fetch(`${gw.url}/api/projects/p1/comments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await gw.userToken('alice')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ body: 'hello' }),
  });
}

describe('comments API with the database down', () => {
  it('answers 503 database_unavailable with Retry-After, then recovers', async () => {
    expect((await postComment()).status).toBe(201);

    proxy.block(true);
    proxy.cut();
    const down = await postComment();
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = (await down.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('database_unavailable');
    expect(body.error.message).toMatch(/database is unavailable/);

    proxy.block(false);
    let recovered = 0;
    for (let i = 0; i < 50 && recovered !== 201; i++) {
      recovered = (await postComment()).status;
      if (recovered !== 201) await new Promise((r) => setTimeout(r, 200));
    }
    expect(recovered).toBe(201);
  });
});
