// Browser bundles of the client library and the demo page, built with esbuild from the
// TypeScript sources on first request and kept in memory. Building on demand means there
// is no build step to forget and no stale artifact: a fresh clone after `npm ci` serves
// exactly what is checked in (the first request takes a few hundred ms to build).
// `npm run build:client` writes the same bundles to dist/client/ for use elsewhere.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const ROOT = new URL('../../', import.meta.url);

/** Served bundles: URL name → entry point (relative to the repository root). */
export const BUNDLES: Readonly<Record<string, string>> = {
  'fanout-client.js': 'src/client/index.ts',
  'fanout-collaboration.js': 'src/client/collaboration.ts',
  'demo.js': 'web/demo/demo.ts',
};

const cache = new Map<string, Promise<Uint8Array>>();

/** Builds one entry point into a single browser ES module (dependencies included). */
export async function buildBundle(entry: string, minify = true): Promise<Uint8Array> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(entry, ROOT))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    write: false,
    minify,
    sourcemap: minify ? false : 'inline',
    keepNames: true,
    legalComments: 'eof',
    logLevel: 'silent',
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error(`esbuild produced no output for ${entry}`);
  return file.contents;
}

/** The bundle named `name`, built once per process (a failed build is retried on the next request). */
export function bundle(name: string): Promise<Uint8Array> | undefined {
  const entry = BUNDLES[name];
  if (!entry) return undefined;
  let pending = cache.get(name);
  if (!pending) {
    pending = buildBundle(entry);
    cache.set(name, pending);
    pending.catch(() => cache.delete(name));
  }
  return pending;
}
