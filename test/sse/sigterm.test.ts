// SIGTERM on a real `fanout serve` process: it stops accepting, tells every stream to
// reconnect elsewhere (a `shutdown` event, then the end of the stream), and exits 0
// within the drain bound.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Auth } from '../../src/core/auth.js';
import { TEST_SECRET } from '../helpers/gateway.js';
import { spawnServe } from '../helpers/serve-process.js';
import { http, openClient, rawGet, waitFor } from './helpers.js';

const dataDir = mkdtempSync(join(tmpdir(), 'fanout-sigterm-'));
let child: ChildProcess | undefined;

afterAll(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

it('drains on SIGTERM: a shutdown event on every stream, then exit 0 within the bound and the port closed', async () => {
  const started = await spawnServe(['--drain-timeout-ms', '3000', '--retry-ms', '500'], dataDir);
  child = started.proc;
  const { url } = started;
  const auth = new Auth(TEST_SECRET);
  const alice = await auth.userToken('alice');
  const keys = await auth.projectKeys();

  const created = await http('POST', `${url}/api/content`, { token: alice, body: { simulate: false } });
  const contentId = created.json.contentId as string;
  const clients = [openClient(`${url}/api/content/${contentId}/progress`, alice), openClient(`${url}/v1/stream?topic=user:alice`, alice)];
  const raw = await rawGet(`${url}/api/content/progress`, { authorization: `Bearer ${alice}` });
  // A client stuck half-way through its request head must not hold the process up either.
  const port = Number(new URL(url).port);
  const stuck = connect(port, '127.0.0.1', () => stuck.write('GET /api/content/progress HTTP/1.1\r\nHost: x\r\n'));
  stuck.on('error', () => undefined);
  await waitFor(() => clients.every((c) => c.of('ready').length === 1) && raw.frames().some((f) => f.fields.event === 'ready'), 'streams ready');
  await http('POST', `${url}/api/content/${contentId}/progress`, { token: keys.service_role, body: { progress: 50 } });
  await waitFor(() => clients.every((c) => c.of('progress').length === 1), 'a live event');

  const killedAt = Date.now();
  child.kill('SIGTERM');
  for (const c of clients) await waitFor(() => c.of('shutdown').length === 1, 'the shutdown event');
  await raw.ended;
  const { code, at } = await started.exited;
  expect(code).toBe(0);
  expect(at - killedAt).toBeLessThan(3000 + 2000);

  const last = raw.frames().at(-1)!;
  expect(last.fields.event).toBe('shutdown');
  expect(JSON.parse(last.fields.data!)).toMatchObject({ code: 'shutdown' });
  expect(JSON.parse(last.fields.data!).message).toMatch(/reconnect/);
  // The process is gone: a reconnect has to go elsewhere.
  await expect(fetch(`${url}/`)).rejects.toThrow();
  for (const c of clients) {
    expect(c.of('shutdown')[0]!.data.code).toBe('shutdown');
    c.close();
  }
  stuck.destroy();
});
