#!/usr/bin/env node
// `npm run build` (run by `prepare`, so `npm ci`, `npm install` from git and `npm pack`
// all produce it): compiles src/ to dist/ with tsc, writes the browser bundles and the
// client library's declaration bundles to dist/bundles/, then stamps dist/ with the time
// the build started. bin/fanout.js runs dist/ only while no source is newer than that
// stamp; otherwise it runs the sources, so a stale build is never what runs.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = new URL('../dist/', import.meta.url);
const started = Date.now();

// `prepare` passes --if-stale: npm runs it on every install of this directory (`npm ci`, and
// `npx fanout` in a checkout, which installs the checkout into npm's exec cache), and a
// build that is already up to date need not be redone.
if (process.argv.includes('--if-stale')) {
  const { chooseEntry } = await import('../bin/entry.js');
  if (chooseEntry(root, {}).kind === 'dist') {
    console.log('build: dist/ is up to date with src/ (npm run build rebuilds it anyway)');
    process.exit(0);
  }
}
const step = (what, since) => console.log(`build: ${what} (${((Date.now() - since) / 1000).toFixed(1)} s)`);

// A clean dist/, so a deleted source leaves no module behind.
rmSync(dist, { recursive: true, force: true });

let t = Date.now();
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (compiled.status !== 0) {
  console.error('build: tsc failed; dist/ is incomplete (bin/fanout.js runs the sources until a build succeeds)');
  process.exit(compiled.status ?? 1);
}
step('compiled src/ to dist/', t);

t = Date.now();
const { BUNDLES, TYPES, PREBUILT_DIR, buildBundle, buildTypes } = await import(new URL('web/bundles.js', dist).href);
mkdirSync(PREBUILT_DIR, { recursive: true });
for (const [name, entry] of Object.entries(BUNDLES)) writeFileSync(new URL(name, PREBUILT_DIR), await buildBundle(entry, true));
for (const [name, entry] of Object.entries(TYPES)) writeFileSync(new URL(name, PREBUILT_DIR), await buildTypes(entry));
step(`wrote ${Object.keys(BUNDLES).length} browser bundles and ${Object.keys(TYPES).length} declaration bundles to dist/bundles/`, t);

writeFileSync(new URL('.build-stamp', dist), JSON.stringify({ sourcesBefore: started, builtAt: new Date().toISOString() }) + '\n');
step('done', started);
