// In a terminal, `fanout serve` starts with a banner: the URLs to open, where the keys come
// from, and what is still starting (the embedded database), then a line when it is ready.
// util-linux `script` gives the process a real pseudo-terminal.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { FANOUT_BIN } from '../helpers/cli.js';

const dataDir = mkdtempSync(join(tmpdir(), 'fanout-banner-'));
let group: number | undefined;
afterAll(() => {
  if (group) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

const hasScript = spawnSync('script', ['--version']).error === undefined;

it.skipIf(!hasScript)('prints the banner in a terminal, then when the embedded database is ready', async () => {
  const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(FANOUT_BIN)} serve --port 0 --data-dir ${JSON.stringify(dataDir)} --log-level warn`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    env: { ...process.env, FANOUT_JWT_SECRET: '', FANOUT_DB_START: 'eager' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  group = child.pid;
  let screen = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      screen += c.toString();
      if (/database {3}ready: /.test(screen)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`exited (${code}) before the database was ready:\n${screen}`)));
  });
  await ready;
  const text = screen.replace(/\r/g, '');
  const url = /^Fanout \d+\.\d+\.\d+\S* is listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(text)?.[1];
  expect(url, text).toBeDefined();
  expect(text).toContain(`  demo       ${url}/demo\n`);
  expect(text).toContain(`  dashboard  ${url}/dashboard`);
  expect(text).toContain(`  metrics    ${url}/metrics\n`);
  expect(text).toContain(`  keys       signed with the development secret in ${join(dataDir, 'jwt-secret')}; print them with \`npx fanout keys --data-dir ${dataDir}\``);
  expect(text).toContain(`  database   the embedded database (PGlite) in ${join(dataDir, 'pglite')}: starting (a first start initialises it, about 10 s); /readyz answers 503 until it is ready`);
  expect(text).toMatch(new RegExp(`  database   ready: the embedded database \\(PGlite\\) in ${join(dataDir, 'pglite').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(\\d+\\.\\d s\\)`));
  // The banner comes first; the ready line after it.
  expect(text.indexOf('is listening on')).toBeLessThan(text.indexOf('database   ready'));
  expect((await fetch(`${url}/readyz`)).status).toBe(200);
  process.kill(-child.pid!, 'SIGTERM');
});
