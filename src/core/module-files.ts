// Fanout runs either from its TypeScript sources (tsx in a checkout, vitest in tests) or
// from the JavaScript that `npm run build` compiles into dist/ (an installed package, and a
// checkout whose build is up to date; see bin/fanout.js). Code that starts a worker thread
// or process from one of its own files must name that file in the same form as itself.
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

/** True when the module at `moduleUrl` (pass `import.meta.url`) is compiled JavaScript, false when it is TypeScript source. */
export function isCompiled(moduleUrl: string): boolean {
  return !/\.[cm]?ts$/.test(new URL(moduleUrl).pathname);
}

/** The file of the module `baseName` (no extension) next to `moduleUrl`, as .ts from source or .js from dist/. */
export function siblingModule(moduleUrl: string, baseName: string): URL {
  return new URL(`./${baseName}${isCompiled(moduleUrl) ? '.js' : '.ts'}`, moduleUrl);
}

/**
 * Node `execArgv` for a child process that runs a sibling module: none for compiled code,
 * tsx's loader (resolved from this package, so it works from any directory) for source.
 */
export function loaderArgs(moduleUrl: string): string[] {
  if (isCompiled(moduleUrl)) return [];
  return ['--import', pathToFileURL(createRequire(moduleUrl).resolve('tsx')).href];
}
