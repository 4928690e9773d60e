// Browser bundles of the client library and the demo page, and the type declarations of
// the two library bundles. Compiled (dist/, an installed package) the gateway serves what
// `npm run build` wrote to dist/bundles/; from source (a checkout, tests) it builds them
// with esbuild and dts-bundle-generator on first request and keeps them in memory, so an
// edited source is what the next process serves. Both are development dependencies: an
// installed package never builds anything.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isCompiled } from '../core/module-files.js';

const ROOT = new URL('../../', import.meta.url);
/** Where `npm run build` writes the bundles (dist/bundles/, next to dist/web/ that holds this module when compiled). */
export const PREBUILT_DIR = new URL('../bundles/', import.meta.url);

/** Served bundles: URL name → entry point (relative to the repository root). */
export const BUNDLES: Readonly<Record<string, string>> = {
  'fanout-client.js': 'src/client/index.ts',
  'fanout-collaboration.js': 'src/client/collaboration.ts',
  'demo.js': 'web/demo/demo.ts',
};

/** Bundles that are a library a TypeScript user imports: URL name of their declarations → entry point. */
export const TYPES: Readonly<Record<string, string>> = {
  'fanout-client.d.ts': 'src/client/index.ts',
  'fanout-collaboration.d.ts': 'src/client/collaboration.ts',
};

/** Builds one entry point into a single browser ES module (dependencies included). */
export async function buildBundle(entry: string, minify = true): Promise<Uint8Array> {
  const { build } = await import('esbuild');
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

/** One self-contained declaration file for an entry point (what `/client/*.d.ts` serves). */
export async function buildTypes(entry: string): Promise<Uint8Array> {
  const { generateDtsBundle } = await import('dts-bundle-generator');
  const [dts] = generateDtsBundle([{ filePath: fileURLToPath(new URL(entry, ROOT)), output: { noBanner: true, exportReferencedTypes: false } }], {
    preferredConfigPath: fileURLToPath(new URL('tsconfig.json', ROOT)),
  });
  if (dts === undefined) throw new Error(`dts-bundle-generator produced no declarations for ${entry}`);
  return new TextEncoder().encode(dts);
}

const cache = new Map<string, Promise<Uint8Array>>();

function cached(name: string, make: () => Promise<Uint8Array>): Promise<Uint8Array> {
  let pending = cache.get(name);
  if (!pending) {
    pending = make();
    cache.set(name, pending);
    pending.catch(() => cache.delete(name));
  }
  return pending;
}

/** The prebuilt file when this module runs compiled and `npm run build` wrote it, else undefined. */
function prebuilt(name: string): Uint8Array | undefined {
  if (!isCompiled(import.meta.url)) return undefined;
  const file = new URL(name, PREBUILT_DIR);
  return existsSync(file) ? readFileSync(file) : undefined;
}

/** The bundle named `name`, built once per process (a failed build is retried on the next request). */
export function bundle(name: string): Promise<Uint8Array> | undefined {
  const entry = BUNDLES[name];
  if (!entry) return undefined;
  return cached(name, async () => prebuilt(name) ?? buildBundle(entry));
}

/** The declarations named `name` (`fanout-client.d.ts`, ...), built once per process. */
export function types(name: string): Promise<Uint8Array> | undefined {
  const entry = TYPES[name];
  if (!entry) return undefined;
  return cached(name, async () => prebuilt(name) ?? buildTypes(entry));
}
