// The npm package: `npm pack` ships the CLI, the compiled code, the client's declarations,
// the pages, the deploy files, LICENSE and CHANGELOG — and not the tests, benchmarks or
// TypeScript sources. Installed from that tarball into an empty project (production
// dependencies only, no compiler), the CLI runs and `fanout/client` resolves with its types.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; exports: Record<string, unknown> };

let dir: string;
let tarball: string;
let files: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-pack-'));
  // `npm pack` runs `prepare`, which builds dist/ if a source is newer than it.
  const { stdout } = await exec('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, maxBuffer: 64 << 20 });
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = join(dir, info!.filename);
  files = info!.files.map((f) => f.path);
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships the CLI, the compiled code, the client types, pages, deploy files, LICENSE and CHANGELOG', () => {
    for (const file of [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'bin/fanout.js',
      'bin/entry.js',
      'dist/cli.js',
      'dist/.build-stamp',
      'dist/client/index.js',
      'dist/client/index.d.ts',
      'dist/client/collaboration.d.ts',
      'dist/changes/pglite-worker.js',
      'dist/load/worker.js',
      'dist/bundles/fanout-client.js',
      'dist/bundles/fanout-client.d.ts',
      'dist/bundles/demo.js',
      'web/dashboard/index.html',
      'web/demo/index.html',
      'web/favicon.svg',
      'deploy/nginx/fanout.conf',
      'deploy/systemd/fanout.service',
      'deploy/grafana/fanout-dashboard.json',
    ]) {
      expect(files, file).toContain(file);
    }
  });

  it('leaves out tests, benchmarks, sources, source maps and development files', () => {
    const unwanted = files.filter((f) => /^(test|bench|src|scripts|\.ci|node_modules)\//.test(f) || /\.map$/.test(f) || /^(tsconfig.*|eslint\.config\.js|vitest\.config\.ts)$/.test(f));
    expect(unwanted).toEqual([]);
  });

  it('points every export at a shipped file', () => {
    const targets: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') targets.push(v.replace(/^\.\//, ''));
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(pkg.exports);
    expect(targets.length).toBeGreaterThan(4);
    for (const target of targets) expect(files, target).toContain(target);
  });

  it('installs into an empty project and runs: the CLI from the compiled code, fanout/client with its types', async () => {
    const app = join(dir, 'app');
    await exec('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await exec('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: app, maxBuffer: 64 << 20 });
    const bin = join(app, 'node_modules/.bin/fanout');
    const version = await exec(bin, ['--version']);
    expect(version.stdout.trim()).toBe(pkg.version);
    const help = await exec(bin, ['serve', '--help']);
    expect(help.stdout).toContain('--port <n>');
    // No TypeScript tooling came with it: what runs is dist/.
    await expect(exec('node', ['-e', "import('tsx')"], { cwd: app })).rejects.toThrow();
    const client = await exec('node', ['--input-type=module', '-e', "const m = await import('fanout/client'); console.log(typeof m.FanoutClient)"], { cwd: app });
    expect(client.stdout.trim()).toBe('function');
    const types = readFileSync(join(app, 'node_modules/fanout/dist/client/index.d.ts'), 'utf8');
    expect(types).toMatch(/FanoutClient/);
  }, 240_000);
});
