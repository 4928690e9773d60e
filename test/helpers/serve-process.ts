// A real `fanout serve` child process, for tests that signal or kill the gateway: resolves
// with its URL once the JSON "gateway listening" log line appears, and rejects with its
// stderr if it exits before that.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { TEST_SECRET } from './gateway.js';

export interface ServeProcess {
  proc: ChildProcess;
  url: string;
  /** Resolves when the process exits: its code and the time it did. */
  exited: Promise<{ code: number | null; at: number }>;
}

export function spawnServe(args: string[], dataDir: string, env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const proc = spawn(process.execPath, ['bin/fanout.js', 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'info', ...args], {
    env: { ...process.env, FANOUT_JWT_SECRET: TEST_SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => proc.on('exit', (code) => resolve({ code, at: Date.now() })));
  return new Promise((resolve, reject) => {
    let stderr = '';
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.on('exit', (code) => reject(new Error(`fanout serve exited (${code}) before listening: ${stderr}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'gateway listening' && entry.url) resolve({ proc, url: entry.url, exited });
      } catch {
        // not a JSON log line
      }
    });
  });
}
