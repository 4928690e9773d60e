// Lint: typescript-eslint's recommended rules plus a ban on `any` (the project's
// boundary rule) and on floating promises, which hide lost errors in a server.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Feature modules get their services from the composition root, not the gateway object. */
const GATEWAY_RULE = ['server/gateway', 'feature modules do not import the gateway: declare the services you need in defineModule (src/server/services.ts)'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'reports/**', 'test-output/**', '.fanout/**', 'web/vendor/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  // Layers: core and bus are below the HTTP server, so
  // they import nothing from src/server (their errors are mapped to HTTP there, by
  // httpErrorOf); content (publishing) and sse (streaming) meet only through core's
  // progress topics and what the gateway hands over, so neither imports the other.
  // Feature modules receive the services they declare (src/server/services.ts), never the
  // whole gateway, so they do not import src/server/gateway.ts (no module ↔ gateway cycle).
  // Specifiers are matched by path segment: no other directory under src/ has these names.
  {
    files: ['src/core/**/*.ts', 'src/bus/**/*.ts'],
    rules: layerRules([['server', 'core/ and bus/ import nothing from server/: throw a DomainError (src/core/errors.ts) and map it in src/server/http-errors.ts']]),
  },
  {
    files: ['src/content/**/*.ts'],
    rules: layerRules([['sse', 'content/ and sse/ do not import each other: what both need belongs in core/ (progress-topics.ts, event-id.ts)'], GATEWAY_RULE]),
  },
  {
    files: ['src/sse/**/*.ts'],
    rules: layerRules([
      ['content', 'content/ and sse/ do not import each other: what both need belongs in core/, and the content items are handed over by the gateway (src/server/modules.ts)'],
      GATEWAY_RULE,
    ]),
  },
  {
    files: ['src/changes/**/*.ts', 'src/realtime/**/*.ts', 'src/monitor/**/*.ts', 'src/web/**/*.ts'],
    rules: layerRules([GATEWAY_RULE]),
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);

/**
 * Rules refusing relative imports of each `[path, message]` target (a directory under src/,
 * or `server/gateway`): static imports, `import type`, `export … from` (no-restricted-imports)
 * and `import()` (no-restricted-syntax).
 */
function layerRules(targets) {
  const pathOf = (target) => `^\\.\\.?/(?:.*/)?${target}(?:/|\\.js$|$)`;
  return {
    'no-restricted-imports': ['error', { patterns: targets.map(([target, message]) => ({ regex: pathOf(target), message })) }],
    'no-restricted-syntax': ['error', ...targets.map(([target, message]) => ({ selector: `ImportExpression[source.value=/${pathOf(target).replaceAll('/', '\\/')}/]`, message }))],
  };
}
