// bin/fanout.js runs dist/ only while it is at least as new as every build input, and
// the sources otherwise: a checkout never runs a stale build, an installed package never
// needs a compiler. Fixtures are small trees with set modification times.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chooseEntry as choose } from '../../bin/entry.js';

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

const T0 = new Date('2026-01-01T00:00:00Z');
const before = new Date(T0.getTime() - 60_000);
const after = new Date(T0.getTime() + 60_000);

/** A package root; `sources` false leaves out src/ (an installed package). */
function fixture({ sources = true, dist = true, stamp = true }: { sources?: boolean; dist?: boolean; stamp?: boolean } = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'fanout-entry-'));
  roots.push(root);
  const file = (path: string, at: Date) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), '//\n');
    utimesSync(join(root, path), at, at);
  };
  if (sources) {
    file('src/cli.ts', before);
    file('src/core/hub.ts', before);
    file('web/demo/demo.ts', before);
    file('tsconfig.json', before);
    for (const dir of ['src/core', 'src', 'web/demo', 'web']) utimesSync(join(root, dir), before, before);
  }
  if (dist) file('dist/cli.js', T0);
  if (dist && stamp) writeFileSync(join(root, 'dist/.build-stamp'), JSON.stringify({ sourcesBefore: T0.getTime() }));
  return root;
}

describe('chooseEntry', () => {
  it('runs dist/ when every source is older than the build', () => {
    const root = fixture();
    expect(choose(root, {})).toMatchObject({ kind: 'dist', file: join(root, 'dist/cli.js') });
  });

  it('runs the sources when a source file changed after the build', () => {
    const root = fixture();
    utimesSync(join(root, 'src/core/hub.ts'), after, after);
    expect(choose(root, {})).toMatchObject({ kind: 'source', file: join(root, 'src/cli.ts'), reason: 'src/core/hub.ts changed after the last build' });
  });

  it('runs the sources when a file was added to or removed from a source directory', () => {
    const root = fixture();
    utimesSync(join(root, 'src/core'), after, after);
    expect(choose(root, {}).kind).toBe('source');
  });

  it('runs the sources when the demo page script or the compiler settings changed', () => {
    const root = fixture();
    utimesSync(join(root, 'web/demo/demo.ts'), after, after);
    expect(choose(root, {}).reason).toContain('web/demo/demo.ts');
    const other = fixture();
    utimesSync(join(other, 'tsconfig.json'), after, after);
    expect(choose(other, {}).reason).toContain('tsconfig.json');
  });

  it('runs the sources when dist/ was never built or its build did not finish', () => {
    expect(choose(fixture({ dist: false }), {})).toMatchObject({ kind: 'source', reason: expect.stringContaining('not built') });
    expect(choose(fixture({ stamp: false }), {})).toMatchObject({ kind: 'source', reason: expect.stringContaining('no build stamp') });
  });

  it('runs the sources when FANOUT_FROM_SOURCE=1, even with a fresh build', () => {
    expect(choose(fixture(), { FANOUT_FROM_SOURCE: '1' }).kind).toBe('source');
  });

  it('runs dist/ in an installed package, which has no sources', () => {
    expect(choose(fixture({ sources: false }), { FANOUT_FROM_SOURCE: '1' }).kind).toBe('dist');
  });

  it('says what is missing when there is neither', () => {
    expect(() => choose(fixture({ sources: false, dist: false }), {})).toThrow(/reinstall the package/);
  });
});
