// Types of bin/entry.js (plain JavaScript, so the entry point runs without a compiler).
export interface Entry {
  kind: 'dist' | 'source';
  /** The module to import: dist/cli.js or src/cli.ts. */
  file: string;
  /** Why this one was chosen, for a developer wondering which code ran. */
  reason: string;
}
export declare const BUILD_INPUTS: readonly string[];
export declare function chooseEntry(root: string, env?: NodeJS.ProcessEnv): Entry;
