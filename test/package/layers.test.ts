// The layer rules `npm run lint` enforces (eslint.config.js): src/core and src/bus import
// nothing from src/server, src/content and src/sse do not import each other, and feature
// modules do not import the gateway (they receive the services they declare). Checked
// here on the real tree, and on probes that break each rule, so the check cannot pass
// because it stopped looking.
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const LAYER_RULES = new Set(['no-restricted-imports', 'no-restricted-syntax']);

/** The project's lint configuration, running only the layer rules (no type information needed). */
function layerLint(): ESLint {
  return new ESLint({
    cwd: root,
    ruleFilter: ({ ruleId }) => LAYER_RULES.has(ruleId),
    overrideConfig: { languageOptions: { parserOptions: { projectService: false } } },
  });
}

async function problems(eslint: ESLint, code: string, file: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}/${file}` });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe('layer rules', () => {
  it('hold on the source tree', async () => {
    const results = await layerLint().lintFiles(['src/core/**/*.ts', 'src/bus/**/*.ts', 'src/content/**/*.ts', 'src/sse/**/*.ts', 'src/changes/**/*.ts', 'src/realtime/**/*.ts', 'src/monitor/**/*.ts', 'src/web/**/*.ts']);
    expect(results.length).toBeGreaterThan(20);
    const found = results.flatMap((r) => r.messages.map((m) => `${r.filePath}:${m.line} ${m.message}`));
    expect(found).toEqual([]);
  });

  it('fail on every way of importing across a forbidden line', async () => {
    const eslint = layerLint();
    const violations: [string, string, RegExp][] = [
      ['src/core/probe.ts', "import { sendJson } from '../server/http-errors.js';\nexport const p = sendJson;", /core\/ and bus\/ import nothing from server\//],
      ['src/core/probe.ts', "import type { Gateway } from '../server/gateway.js';\nexport type P = Gateway;", /core\/ and bus\/ import nothing from server\//],
      ['src/bus/probe.ts', "export { sendJson } from '../server/http-errors.js';", /core\/ and bus\/ import nothing from server\//],
      ['src/bus/probe.ts', "export const p = () => import('../server/router.js');", /core\/ and bus\/ import nothing from server\//],
      ['src/content/probe.ts', "import { SseStream } from '../sse/stream.js';\nexport const p = SseStream;", /content\/ and sse\/ do not import each other/],
      ['src/realtime/probe.ts', "import type { Gateway } from '../server/gateway.js';\nexport type P = Gateway;", /feature modules do not import the gateway/],
      ['src/sse/probe.ts', "export const p = () => import('../server/gateway.js');", /feature modules do not import the gateway/],
      ['src/changes/deeper/probe.ts', "import { createGateway } from '../../server/gateway.js';\nexport const p = createGateway;", /feature modules do not import the gateway/],
    ];
    for (const [file, code, message] of violations) {
      const found = await problems(eslint, code, file);
      expect(found, `${file}: ${code}`).toHaveLength(1);
      expect(found[0], `${file}: ${code}`).toMatch(message);
    }
    // What is allowed stays allowed: core from bus, sse from core and server, content from core.
    expect(await problems(eslint, "import type { Bus } from '../bus/types.js';\nexport type P = Bus;", 'src/core/probe.ts')).toEqual([]);
    expect(await problems(eslint, "import { sendJson } from '../server/http-errors.js';\nimport { FINAL_EVENTS } from '../core/progress-topics.js';\nexport const p = [sendJson, FINAL_EVENTS];", 'src/sse/probe.ts')).toEqual([]);
    expect(await problems(eslint, "import { formatPosition } from '../core/event-id.js';\nexport const p = formatPosition;", 'src/content/probe.ts')).toEqual([]);
    expect(await problems(eslint, "import { defineModule } from '../server/services.js';\nexport const p = defineModule;", 'src/realtime/probe.ts')).toEqual([]);
  });
});
