// Headless Chromium for the client-library browser tests: Debian's /usr/bin/chromium
// driven by playwright-core, with a fresh profile per launch and the background
// networking this closed machine would refuse turned off.
import { mkdirSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const SCREENSHOTS = new URL('../../test-output/', import.meta.url);

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A persistent context on a fresh, throw-away profile: every page in it shares one origin's storage, locks and channels. */
export async function launchBrowser(): Promise<TestBrowser> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'fanout-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 860 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export const screenshot = (name: string): string => new URL(name, SCREENSHOTS).pathname;

/**
 * Loads the client bundle the gateway serves into the page as `globalThis.FanoutLib`.
 * (A dynamic `import()` inside a function passed to page.evaluate would be rewritten by
 * vitest's transform; a module script tag is not.)
 */
export async function loadClientBundle(page: Page): Promise<void> {
  await page.addScriptTag({ type: 'module', content: "import * as lib from '/client/fanout-client.js'; globalThis.FanoutLib = lib;" });
  await page.waitForFunction(() => 'FanoutLib' in globalThis);
}

export type FanoutLib = typeof import('../../src/client/index.js');
