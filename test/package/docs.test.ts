// The README and docs/ point only at things that exist: every relative link resolves to a
// file (and its #anchor to a heading there), every repository path quoted in backticks is a
// real file or directory, and the README's first screen stays a first screen.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAGES = ['README.md', 'CHANGELOG.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

const anchors = (file: string) => new Set([...readFileSync(file, 'utf8').matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));

describe('documentation', () => {
  it('links only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      const text = readFileSync(join(ROOT, page), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:)/.test(target!)) continue;
        const [path, anchor] = target!.split('#') as [string, string | undefined];
        const file = path ? join(ROOT, dirname(page), path) : join(ROOT, page);
        if (!existsSync(file)) broken.push(`${page}: ${target} (no such file)`);
        else if (anchor && file.endsWith('.md') && !anchors(file).has(anchor)) broken.push(`${page}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('names only repository paths that exist', () => {
    const missing: string[] = [];
    for (const page of PAGES) {
      const text = readFileSync(join(ROOT, page), 'utf8');
      for (const [, path] of text.matchAll(/`((?:src|test|web|deploy|docs|bench|scripts|bin)\/[\w./-]+)`/g)) {
        if (/[*…<]/.test(path!)) continue; // a pattern, not a path
        if (!existsSync(join(ROOT, path!))) missing.push(`${page}: ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('keeps the README’s first screen short: what it is, the two commands, what to open next', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
    const firstSection = readme.findIndex((l, i) => i > 0 && l.startsWith('## '));
    expect(firstSection).toBeGreaterThan(0);
    expect(firstSection).toBeLessThanOrEqual(41);
    const top = readme.slice(0, firstSection).join('\n');
    expect(top).toMatch(/```sh\nnpm install && npx fanout serve[^\n]*\nnpm test[^\n]*\n```/);
    expect(top.indexOf('npm install && npx fanout serve')).toBeLessThan(top.indexOf('docs/'));
  });

  it('has no unexplained jargon: "the seed" is described, not assumed', () => {
    for (const page of PAGES) expect(readFileSync(join(ROOT, page), 'utf8'), page).not.toMatch(/\bthe seed\b/i);
  });
});
