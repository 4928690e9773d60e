// Serves the dashboard page (web/dashboard): an HTML file, its scripts and stylesheet,
// read once at start-up. Everything is same-origin (no CDN), which the Content Security
// Policy enforces: the page can only load its own files and talk to its own server.
import { readFileSync } from 'node:fs';
import type { Router } from '../server/router.js';

const WEB_DIR = new URL('../../web/dashboard/', import.meta.url);

const FILES: { path: string; file: string; type: string }[] = [
  { path: '/dashboard', file: 'index.html', type: 'text/html; charset=utf-8' },
  { path: '/dashboard/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { path: '/dashboard/chart.js', file: 'chart.js', type: 'text/javascript; charset=utf-8' },
  { path: '/dashboard/feed-client.js', file: 'feed-client.js', type: 'text/javascript; charset=utf-8' },
  { path: '/dashboard/style.css', file: 'style.css', type: 'text/css; charset=utf-8' },
];

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export function registerDashboardPage(router: Router): void {
  for (const { path, file, type } of FILES) {
    const body = readFileSync(new URL(file, WEB_DIR));
    router.on(['GET', 'HEAD'], path, ({ res }) => {
      res.writeHead(200, { 'content-type': type, 'content-length': body.length, ...SECURITY_HEADERS });
      res.end(body);
    });
  }
}
