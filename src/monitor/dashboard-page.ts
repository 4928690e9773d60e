// Serves the dashboard page (web/dashboard): an HTML file, its scripts and stylesheet,
// read once at start-up, same-origin only (see src/server/static-files.ts).
import { readFileSync } from 'node:fs';
import type { Router } from '../server/router.js';
import { CONTENT_TYPES, serveStatic } from '../server/static-files.js';

const WEB_DIR = new URL('../../web/dashboard/', import.meta.url);

const FILES: { path: string; file: string; type: string }[] = [
  { path: '/dashboard', file: 'index.html', type: CONTENT_TYPES.html },
  { path: '/dashboard/app.js', file: 'app.js', type: CONTENT_TYPES.js },
  { path: '/dashboard/chart.js', file: 'chart.js', type: CONTENT_TYPES.js },
  { path: '/dashboard/feed-client.js', file: 'feed-client.js', type: CONTENT_TYPES.js },
  { path: '/dashboard/style.css', file: 'style.css', type: CONTENT_TYPES.css },
];

export function registerDashboardPage(router: Router): void {
  serveStatic(
    router,
    FILES.map(({ path, file, type }) => ({ path, type, body: readFileSync(new URL(file, WEB_DIR)) })),
  );
}
