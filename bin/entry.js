// Chooses what `bin/fanout.js` runs: the compiled JavaScript in dist/ when it is at least
// as new as every source it was built from, otherwise the TypeScript sources (through
// tsx). An installed package has no src/ and always runs dist/; a checkout runs dist/
// right after `npm ci` (whose `prepare` builds it) and falls back to the sources as soon
// as anyone edits, checks out or pulls a source file, so a stale build never runs.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** What a build is made from: a change to any of these (or a file added to or removed from them) makes dist/ stale. */
export const BUILD_INPUTS = ['src', 'web', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs'];

/**
 * @typedef {{ kind: 'dist' | 'source', file: string, reason: string }} Entry
 * @param {string} root the package root
 * @param {NodeJS.ProcessEnv} env
 * @returns {Entry}
 */
export function chooseEntry(root, env = process.env) {
  const dist = join(root, 'dist', 'cli.js');
  const source = join(root, 'src', 'cli.ts');
  const hasSource = existsSync(source);
  const hasDist = existsSync(dist);
  if (!hasSource) {
    if (hasDist) return { kind: 'dist', file: dist, reason: 'installed package (no sources)' };
    throw new Error(`fanout: neither ${dist} nor ${source} exists; reinstall the package`);
  }
  if (env.FANOUT_FROM_SOURCE === '1') return { kind: 'source', file: source, reason: 'FANOUT_FROM_SOURCE=1' };
  if (!hasDist) return { kind: 'source', file: source, reason: 'dist/ is not built (npm run build)' };
  const builtFrom = buildStamp(root);
  if (builtFrom === undefined) return { kind: 'source', file: source, reason: 'dist/ has no build stamp (an interrupted build)' };
  const newer = firstNewerInput(root, builtFrom);
  if (newer) return { kind: 'source', file: source, reason: `${newer} changed after the last build` };
  return { kind: 'dist', file: dist, reason: 'dist/ is up to date with src/' };
}

/** When the build that made dist/ started (ms since the epoch), or undefined without a valid stamp. */
function buildStamp(root) {
  try {
    const stamp = JSON.parse(readFileSync(join(root, 'dist', '.build-stamp'), 'utf8'));
    return typeof stamp.sourcesBefore === 'number' ? stamp.sourcesBefore : undefined;
  } catch {
    return undefined;
  }
}

/** The first build input (file or directory, relative to root) modified at or after `since`, or undefined. */
function firstNewerInput(root, since) {
  const pending = BUILD_INPUTS.map((p) => join(root, p));
  while (pending.length) {
    const path = pending.pop();
    let stat;
    try {
      stat = statSync(path);
    } catch {
      continue;
    }
    if (stat.mtimeMs >= since) return path.slice(root.length + 1);
    if (stat.isDirectory()) for (const name of readdirSync(path)) pending.push(join(path, name));
  }
  return undefined;
}
