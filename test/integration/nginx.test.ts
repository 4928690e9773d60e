// Fanout behind Debian's nginx, configured with deploy/nginx/fanout.conf as shipped (only
// the listen and upstream addresses swapped for free ports): an SSE stream resumes with
// Last-Event-ID after nginx drops it, a supabase-js channel works over the upgraded
// WebSocket, 1,000 streams through the proxy each receive every event in order, and the
// demo's loopback-only sessions are not handed to clients the proxy forwards.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type RealtimeChannel, type SupabaseClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../../src/load/embedded-gateway.js';
import { openClient, seqs, waitFor } from '../sse/helpers.js';

const NGINX = '/usr/sbin/nginx';
const SITE = fileURLToPath(new URL('../../deploy/nginx/fanout.conf', import.meta.url));
const STREAMS = 1000;

let gw: TestGateway;
let dir: string;
let nginx: ChildProcess | undefined;
let proxy: string;

/** deploy/nginx/fanout.conf with this test's addresses, inside a minimal nginx.conf of its own. */
function writeConfig(listenPort: number, upstream: string): string {
  const site = readFileSync(SITE, 'utf8');
  expect(site).toMatch(/^\s*server 127\.0\.0\.1:4000;/m);
  expect(site).toMatch(/^\s*listen 80;/m);
  const rendered = site.replace(/^(\s*)server 127\.0\.0\.1:4000;/m, `$1server ${upstream};`).replace(/^(\s*)listen 80;/m, `$1listen 127.0.0.1:${listenPort};`);
  writeFileSync(join(dir, 'fanout.conf'), rendered);
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub), { recursive: true });
  const conf = `
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
worker_rlimit_nofile 8192;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  include ${join(dir, 'fanout.conf')};
}
`;
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf);
  return file;
}

/** Resolves once something answers HTTP on `url`. */
async function reachable(url: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await fetch(url);
      return;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

beforeAll(async () => {
  expect(spawnSync(NGINX, ['-v']).error, `${NGINX} is missing: scripts/ensure-services.sh installs Debian's nginx`).toBeUndefined();
  dir = mkdtempSync(join(tmpdir(), 'fanout-nginx-'));
  // On a development secret (none given), as `npx fanout serve` runs: demo sessions are on for loopback clients.
  gw = await startGateway({ jwtSecret: undefined, retryMs: 300, maxConnectionsPerUser: STREAMS + 100, maxConnections: STREAMS + 500 });
  expect(gw.gateway.secret.origin).toBe('file');
  const port = await freePort();
  const conf = writeConfig(port, new URL(gw.url).host);
  const check = spawnSync(NGINX, ['-t', '-c', conf, '-p', dir], { encoding: 'utf8' });
  expect(check.status, check.stderr).toBe(0);
  nginx = spawn(NGINX, ['-c', conf, '-p', dir, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  proxy = `http://127.0.0.1:${port}`;
  await reachable(`${proxy}/healthz`);
});

afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((r) => nginx!.once('exit', r));
    nginx.kill('SIGQUIT');
    await exited;
  }
  await gw?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('behind nginx (deploy/nginx/fanout.conf)', () => {
  it('passes an SSE stream unbuffered, and it resumes with Last-Event-ID after nginx drops it', async () => {
    const alice = await gw.userToken('alice');
    const progress = gw.gateway.service('content').progress;
    const item = progress.create('alice');
    const client = openClient(`${proxy}/api/content/${item.id}/progress`, alice);
    try {
      await waitFor(() => client.of('ready').length === 1, 'the stream through nginx');
      // Each event must arrive while the stream stays open: a buffering proxy would hold them.
      await progress.publish(item.id, 'progress', { progress: 10 });
      await waitFor(() => client.of('progress').length === 1, 'event 1 through nginx');
      await progress.publish(item.id, 'progress', { progress: 20 });
      await waitFor(() => client.of('progress').length === 2, 'event 2 through nginx');

      // Kill nginx's worker: every proxied connection drops; the master starts a new worker.
      const workers = spawnSync('pgrep', ['-P', String(nginx!.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
      expect(workers.length).toBeGreaterThan(0);
      for (const pid of workers) process.kill(pid, 'SIGKILL');
      await progress.publish(item.id, 'progress', { progress: 30 });
      await progress.publish(item.id, 'progress', { progress: 40 });
      await waitFor(() => client.of('progress').length === 4, 'the missed events after the reconnect', 20_000);
      expect(client.opens).toBe(2);
      expect(client.of('progress').map((e) => e.data.progress)).toEqual([10, 20, 30, 40]);
      expect(seqs(client.of('progress'))).toEqual([...seqs(client.of('progress'))].sort((a, b) => a - b));
    } finally {
      client.close();
    }
  });

  it('carries a supabase-js channel over the upgraded WebSocket: broadcast and presence', async () => {
    const clients: SupabaseClient[] = [];
    const channels: RealtimeChannel[] = [];
    const make = () => {
      const c = createClient(proxy, gw.keys.anon, { realtime: { transport: WebSocket as never, params: { eventsPerSecond: -1 } } });
      clients.push(c);
      return c;
    };
    try {
      const received: unknown[] = [];
      const join = (c: SupabaseClient, key: string) =>
        new Promise<RealtimeChannel>((resolve, reject) => {
          const ch = c.channel('nginx-room', { config: { presence: { key } } });
          channels.push(ch);
          ch.on('broadcast', { event: 'note' }, (msg) => received.push(msg.payload));
          ch.on('presence', { event: 'sync' }, () => undefined);
          ch.subscribe((status, err) => {
            if (status === 'SUBSCRIBED') resolve(ch);
            else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(err ?? new Error(status));
          });
        });
      const a = await join(make(), 'ann');
      const b = await join(make(), 'bob');
      await a.track({ online: true });
      await waitFor(() => Object.keys(b.presenceState()).includes('ann'), 'presence through nginx');
      expect(await a.send({ type: 'broadcast', event: 'note', payload: { text: 'through the proxy' } })).toBe('ok');
      await waitFor(() => received.length >= 1, 'the broadcast through nginx');
      expect(received).toContainEqual({ text: 'through the proxy' });
    } finally {
      for (const ch of channels) await ch.unsubscribe();
      for (const c of clients) await c.removeAllChannels();
    }
  });

  it(`fans out to ${STREAMS.toLocaleString('en')} SSE streams through the proxy, every event to every stream, in order`, async () => {
    const token = await gw.userToken('fan');
    const progress = gw.gateway.service('content').progress;
    const item = progress.create('fan');
    const streams: { req: ClientRequest; text: string; status: number }[] = [];
    const ids = (s: { text: string }) => [...s.text.matchAll(/^event: progress\ndata: (.*)$/gm)].map((m) => (JSON.parse(m[1]!) as { progress: number }).progress);
    try {
      await Promise.all(
        Array.from(
          { length: STREAMS },
          () =>
            new Promise<void>((resolve, reject) => {
              const stream = { req: undefined as unknown as ClientRequest, text: '', status: 0 };
              stream.req = request(`${proxy}/api/content/${item.id}/progress`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
                stream.status = res.statusCode ?? 0;
                res.setEncoding('utf8');
                res.on('data', (chunk: string) => {
                  stream.text += chunk;
                  if (stream.text.includes('event: ready')) resolve();
                });
              });
              stream.req.on('error', reject);
              stream.req.end();
              streams.push(stream);
            }),
        ),
      );
      expect(streams.every((s) => s.status === 200)).toBe(true);
      expect(gw.gateway.connections.count('sse')).toBeGreaterThanOrEqual(STREAMS);
      for (const p of [25, 50, 75]) await progress.publish(item.id, 'progress', { progress: p });
      await waitFor(() => streams.every((s) => ids(s).length === 3), `3 events on all ${STREAMS} streams`, 30_000);
      expect(streams.filter((s) => ids(s).join() !== '25,50,75')).toEqual([]);
    } finally {
      for (const s of streams) s.req.destroy();
    }
  });

  it('refuses the loopback-only demo session to clients nginx forwards', async () => {
    const direct = await fetch(`${gw.url}/demo/session`);
    expect(direct.status).toBe(200);
    const proxied = await fetch(`${proxy}/demo/session`);
    expect(proxied.status).toBe(404);
    expect(((await proxied.json()) as { error: { code: string } }).error.code).toBe('demo_session_disabled');
  });
});
