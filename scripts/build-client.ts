// `npm run build:client`: writes the browser bundles the gateway serves (/client/*.js,
// /demo/demo.js) to dist/client/, minified, plus unminified copies with inline source
// maps (*.dev.js), for hosting them elsewhere. The gateway itself builds them on demand.
import { mkdirSync, writeFileSync } from 'node:fs';
import { BUNDLES, buildBundle } from '../src/web/bundles.js';

const out = new URL('../dist/client/', import.meta.url);
mkdirSync(out, { recursive: true });
for (const [name, entry] of Object.entries(BUNDLES)) {
  const started = Date.now();
  const min = await buildBundle(entry, true);
  const dev = await buildBundle(entry, false);
  writeFileSync(new URL(name, out), min);
  writeFileSync(new URL(name.replace(/\.js$/, '.dev.js'), out), dev);
  console.log(`dist/client/${name}: ${(min.byteLength / 1024).toFixed(1)} KiB (${entry}, ${Date.now() - started} ms)`);
}
