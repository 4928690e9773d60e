// Runs the `fanout` command as a user would (`node bin/fanout.js …`, never npx) and
// collects its exit code and output; `timeoutMs` bounds a command that would otherwise
// keep running (a server that started when it should not have).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const FANOUT_BIN = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The first line of stderr: where a failure's one-line explanation must be. */
  firstLine: string;
}

export function runFanout(args: string[], { env = {}, timeoutMs = 30_000, cwd }: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FANOUT_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, firstLine: stderr.split('\n')[0] ?? '' });
    });
  });
}
