// SIGTERM reaches the gateway however it is started. Under systemd (the unit in deploy/,
// its command line run as systemd would run it) and under npm (`npm start`, whose shell
// would otherwise swallow the signal sent to npm), the gateway drains and exits by itself.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_SECRET } from '../helpers/gateway.js';
import { freePort } from '../../src/load/embedded-gateway.js';
import { startedByNpm } from '../../src/commands/signals.js';
import { spawnServe } from '../helpers/serve-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const UNIT = join(ROOT, 'deploy/systemd/fanout.service');
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface LogLine {
  msg?: string;
  pid?: number;
  url?: string;
  signal?: string;
}

/** Collects a process's JSON log lines and resolves `listening` with the first "gateway listening" line. */
function followLog(child: ChildProcess): { lines: LogLine[]; listening: Promise<LogLine>; exited: Promise<number | null> } {
  const lines: LogLine[] = [];
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<LogLine>((resolve, reject) => {
    exited.then((code) => reject(new Error(`exited (${code}) before listening: ${stderr}`)), () => undefined);
    createInterface({ input: child.stdout! }).on('line', (text) => {
      try {
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        if (line.msg === 'gateway listening') resolve(line);
      } catch {
        // npm's own output
      }
    });
  });
  return { lines, listening, exited };
}

/** Resolves once no process has this pid (polled; the test's timeout bounds it). */
async function gone(pid: number): Promise<void> {
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The [Service] section's settings: Environment= as a map, the rest as the last value given. */
function parseUnit(text: string): { env: Record<string, string>; settings: Record<string, string> } {
  const env: Record<string, string> = {};
  const settings: Record<string, string> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (section !== 'Service') continue;
    const [key, ...rest] = line.split('=');
    const value = rest.join('=');
    if (key === 'Environment') {
      const [name, ...v] = value.split('=');
      env[name!] = v.join('=');
    } else settings[key!] = value;
  }
  return { env, settings };
}

describe('under systemd (deploy/systemd/fanout.service)', () => {
  const unit = parseUnit(readFileSync(UNIT, 'utf8'));

  it.skipIf(spawnSync('systemd-analyze', ['--version']).error !== undefined)('is a unit systemd-analyze accepts', () => {
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('runs node on bin/fanout.js directly, and drains and exits 0 on its KillSignal', async () => {
    expect(unit.settings.ExecStart).toBe('/usr/bin/node /opt/fanout/bin/fanout.js serve');
    expect(unit.settings.KillSignal).toBe('SIGTERM');
    const dataDir = mkdtempSync(join(tmpdir(), 'fanout-systemd-'));
    dirs.push(dataDir);
    // The unit's command line with this checkout for /opt/fanout and this Node for /usr/bin/node.
    const [, script, ...args] = unit.settings.ExecStart!.split(' ');
    const port = await freePort();
    const child = spawn(process.execPath, [script!.replace('/opt/fanout/', ROOT), ...args], {
      cwd: dataDir,
      // The unit's environment, then what /etc/fanout/fanout.env would add, then a free port and a temp data dir.
      env: { PATH: process.env.PATH, ...unit.env, FANOUT_JWT_SECRET: TEST_SECRET, FANOUT_DB_START: 'lazy', PORT: String(port), FANOUT_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const log = followLog(child);
    const listening = await log.listening;
    expect(listening.url).toBe(`http://127.0.0.1:${port}`);
    expect((await fetch(`${listening.url}/healthz`)).status).toBe(200);
    child.kill(unit.settings.KillSignal as NodeJS.Signals);
    expect(await log.exited).toBe(0);
    expect(log.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['draining', 'gateway stopped']));
    expect(log.lines.find((l) => l.msg === 'draining')?.signal).toBe('SIGTERM');
  });
});

describe('during start-up', () => {
  it('drains and exits 0 when stopped while the embedded database is still opening', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fanout-early-stop-'));
    dirs.push(dataDir);
    // A fresh data directory: the embedded database's first start takes seconds, the stop comes first.
    const started = await spawnServe(['--db-start', 'eager'], dataDir);
    children.push(started.proc);
    started.proc.kill('SIGTERM');
    expect((await started.exited).code).toBe(0);
  });
});

describe('under npm', () => {
  it('recognises npm from the variables npm sets', () => {
    expect(startedByNpm({ npm_command: 'exec' })).toBe(true);
    expect(startedByNpm({ npm_lifecycle_event: 'start' })).toBe(true);
    expect(startedByNpm({})).toBe(false);
  });

  it('stops when `npm start` is sent SIGTERM, though npm’s shell does not pass it on', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fanout-npm-'));
    dirs.push(dataDir);
    const npm = spawn('npm', ['start', '--silent', '--', '--port', '0', '--data-dir', dataDir, '--db-start', 'lazy'], {
      cwd: ROOT,
      env: { ...process.env, FANOUT_JWT_SECRET: TEST_SECRET, FANOUT_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(npm);
    const log = followLog(npm);
    const listening = await log.listening;
    const gateway = listening.pid!;
    expect(gateway).not.toBe(npm.pid); // npm → sh -c → node: the gateway is a grandchild
    npm.kill('SIGTERM');
    await log.exited;
    await gone(gateway);
    await expect(fetch(`${listening.url}/healthz`)).rejects.toThrow();
  });
});
