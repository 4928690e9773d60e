#!/usr/bin/env node
// Entry point of the `fanout` command. It runs the compiled JavaScript in dist/ (no
// compiler at start-up: `fanout --help` answers in a fraction of a second), unless this is
// a checkout whose sources changed since the last build: then it runs the sources through
// tsx, so what runs is always what is checked out. See bin/entry.js.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chooseEntry } from './entry.js';

const entry = chooseEntry(fileURLToPath(new URL('..', import.meta.url)));
if (entry.kind === 'source') {
  const tsx = await import('tsx/esm/api').catch(() => undefined);
  if (!tsx) {
    console.error(`fanout: cannot run the sources (${entry.reason}) without tsx: run \`npm install\` (development dependencies) or \`npm run build\``);
    process.exit(4);
  }
  tsx.register();
}
await import(pathToFileURL(entry.file).href);
