import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FANOUT = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));

function serve(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fanout-serve-'));
    const child = spawn(process.execPath, [FANOUT, 'serve', '--port', '0', '--data-dir', dataDir, ...args], {
      env: { ...process.env, FANOUT_JWT_SECRET: 'x'.repeat(40), FANOUT_LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // A valid file would start the server: stop it after a moment so the test can never hang.
    const timer = setTimeout(() => child.kill('SIGTERM'), 8000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('fanout serve --alerts', () => {
  it('refuses to start on a bad rules file, naming the file, the rule and the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-alerts-'));
    const file = join(dir, 'rules.json');
    writeFileSync(file, JSON.stringify({ rules: [{ name: 'ok', signal: 'connections', threshold: 1 }, { name: 'inbound_flood', signal: 'messages_in_per_second', threshold: 5000, resolve: 6000 }] }));
    const { code, stderr } = await serve(['--alerts', file]);
    expect(code).toBe(2);
    expect(stderr).toContain(`fanout serve: invalid configuration:`);
    expect(stderr).toContain(`--alerts ${file}: rule "inbound_flood" (rules[1]): resolve: must be at or below the threshold (5000)`);
    expect(stderr).not.toMatch(/at .*\.ts:\d+/); // a message, not a stack trace
  });

  it('reads the file from FANOUT_ALERTS too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-alerts-'));
    const file = join(dir, 'rules.json');
    writeFileSync(file, JSON.stringify({ rules: [{ name: 'typo', signal: 'conections', threshold: 1 }] }));
    const { code, stderr } = await serve([], { FANOUT_ALERTS: file });
    expect(code).toBe(2);
    expect(stderr).toContain(`rule "typo" (rules[0]): signal:`);
  });
});
