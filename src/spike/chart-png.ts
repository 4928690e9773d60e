// Renders the report's SVG charts to PNG with headless Chromium (playwright-core driving
// the system's /usr/bin/chromium), for places that cannot show SVG inline (a README on a
// code host that strips it, a slide). Optional: playwright-core is a development dependency.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Chart } from './report-charts.js';

export const CHROMIUM = process.env.FANOUT_CHROMIUM ?? '/usr/bin/chromium';

interface Page {
  setContent(html: string): Promise<void>;
  locator(sel: string): { screenshot(opts: { path: string }): Promise<unknown> };
}
interface Browser {
  newPage(opts: { viewport: { width: number; height: number }; deviceScaleFactor: number }): Promise<Page>;
  close(): Promise<void>;
}

export async function renderChartsToPng(charts: readonly Chart[], dir: string, only?: readonly string[]): Promise<string[]> {
  let chromium: { launch(opts: Record<string, unknown>): Promise<Browser> };
  try {
    ({ chromium } = (await import('playwright-core')) as unknown as { chromium: typeof chromium });
  } catch (err) {
    throw new Error(`rendering PNG needs playwright-core (npm install playwright-core) and Chromium at ${CHROMIUM}: ${(err as Error).message}`, { cause: err });
  }
  mkdirSync(dir, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  const out: string[] = [];
  try {
    const page = await browser.newPage({ viewport: { width: 800, height: 600 }, deviceScaleFactor: 2 });
    for (const chart of charts) {
      if (only && !only.includes(chart.id)) continue;
      await page.setContent(`<!doctype html><html><body style="margin:0;background:#fff">${chart.svg}</body></html>`);
      const path = join(dir, `${chart.id}.png`);
      await page.locator('svg').screenshot({ path });
      out.push(path);
    }
  } finally {
    await browser.close();
  }
  return out;
}
