// Web assets the gateway serves for browsers:
//   GET /client/fanout-client.js           the client library as one ES module
//   GET /client/fanout-collaboration.js    supabase-js plus the collaboration helper
//   GET /demo                              the hybrid demo page (web/demo/)
//   GET /demo/session                      a development-only key for the demo (see below)
//
// /demo/session hands a browser a user token (role `authenticated`) and the anon key, so
// the demo runs with no sign-in. Anyone who can call it can act as any user it names, so
// it is enabled by `--demo-session`: `off`; `on` (anyone who reaches the gateway — only
// for a throw-away deployment); or `auto` (the default): only while the gateway runs on
// the generated development secret (FANOUT_JWT_SECRET unset, the setting in which
// `npx fanout keys` already prints every key to whoever has the data directory) AND only
// for requests from a loopback address whose Host header names loopback too (so a
// DNS-rebound page of another site cannot take a key). A production gateway (FANOUT_JWT_SECRET set)
// answers 404 unless an operator turned it on explicitly. In every mode it answers only the
// gateway's own pages: a page of another origin (which CORS would otherwise let read the
// answer) is refused, so a site a developer happens to visit cannot take a key.
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { defineModule, type Services } from '../server/services.js';
import { HttpError, sendJson } from '../server/http-errors.js';
import { bundle, types } from './bundles.js';
import { CONTENT_TYPES, serveStatic } from '../server/static-files.js';
import { isLoopbackAddress } from '../core/trusted-proxies.js';

const WEB_DIR = new URL('../../web/demo/', import.meta.url);

/** The `host[:port]` of an `Origin` header; undefined for `null` or garbage. */
function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

const PAGES: { path: string; file: string; type: string }[] = [
  { path: '/demo', file: 'index.html', type: CONTENT_TYPES.html },
  { path: '/demo/style.css', file: 'style.css', type: CONTENT_TYPES.css },
];

/** Bundles; a library bundle names its declarations, as Deno's X-TypeScript-Types convention has it. */
const SCRIPTS: { path: string; name: string; types?: string }[] = [
  { path: '/client/fanout-client.js', name: 'fanout-client.js', types: 'fanout-client.d.ts' },
  { path: '/client/fanout-collaboration.js', name: 'fanout-collaboration.js', types: 'fanout-collaboration.d.ts' },
  { path: '/demo/demo.js', name: 'demo.js' },
];

/** The icon both pages link (and browsers ask for as /favicon.ico by default). */
const FAVICON = readFileSync(new URL('../favicon.svg', WEB_DIR));

const DEMO_USER = /^[A-Za-z0-9_-]{1,40}$/;
const SESSION_TTL_S = 3600;

/**
 * True when the request's `Host` names this machine's loopback (localhost, 127.0.0.0/8,
 * [::1]). A loopback client address alone is not enough: with DNS rebinding, a page of
 * evil.example whose name was re-pointed at 127.0.0.1 reaches the gateway from the
 * developer's own browser, but its requests still carry `Host: evil.example`.
 */
function hostIsLoopback(host: string | undefined): boolean {
  if (!host) return false;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    return false;
  }
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
  return isLoopbackAddress(hostname.replace(/^\[|\]$/g, ''));
}

/**
 * A request that came through a reverse proxy (it carries X-Forwarded-For or Forwarded)
 * reaches us from the proxy's address, often loopback, whoever sent it: it never counts as
 * a local client.
 */
function forwarded(req: IncomingMessage): boolean {
  return req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined;
}

export const webModule = defineModule({
  name: 'web',
  needs: ['router', 'config', 'log', 'secret', 'auth', 'clientAddress'],
  start: (deps) => registerWeb(deps),
});

function registerWeb(deps: Pick<Services, 'router' | 'config' | 'log' | 'secret' | 'auth' | 'clientAddress'>): void {
  const { router, config, log } = deps;

  /** A bundle or declaration file, or a 500 naming why it could not be built. */
  const built = async (name: string, pending: Promise<Uint8Array>): Promise<Uint8Array> => {
    try {
      return await pending;
    } catch (err) {
      log.error({ err, bundle: name }, 'building a browser bundle failed');
      throw new HttpError(500, 'bundle_failed', `building ${name} failed: ${(err as Error).message.split('\n')[0]}`);
    }
  };

  serveStatic(router, [
    ...PAGES.map(({ path, file, type }) => ({ path, type, body: readFileSync(new URL(file, WEB_DIR)) })),
    ...SCRIPTS.map(({ path, name, types: typesName }) => ({
      path,
      type: CONTENT_TYPES.js,
      ...(typesName ? { headers: { 'x-typescript-types': `/client/${typesName}` } } : {}),
      body: () => built(name, bundle(name)!),
    })),
    ...SCRIPTS.flatMap(({ types: typesName }) => (typesName ? [{ path: `/client/${typesName}`, type: CONTENT_TYPES.ts, body: () => built(typesName, types(typesName)!) }] : [])),
    { path: '/favicon.svg', type: CONTENT_TYPES.svg, body: FAVICON },
    { path: '/favicon.ico', type: CONTENT_TYPES.svg, body: FAVICON },
  ]);

  const sessionEnabled = (req: IncomingMessage): boolean => {
    if (config.demoSession === 'on') return true;
    if (config.demoSession === 'off') return false;
    return deps.secret.origin === 'file' && !forwarded(req) && isLoopbackAddress(deps.clientAddress(req)) && hostIsLoopback(req.headers.host);
  };

  router.on('GET', '/demo/session', async ({ req, res, query }) => {
    const origin = req.headers.origin;
    if (origin !== undefined && originHost(origin) !== req.headers.host) {
      throw new HttpError(403, 'cross_origin_demo_session', `demo sessions are given only to the gateway's own /demo page, not to a page of ${JSON.stringify(origin.slice(0, 200))}`);
    }
    if (!sessionEnabled(req)) {
      throw new HttpError(
        404,
        'demo_session_disabled',
        config.demoSession === 'off'
          ? 'demo sessions are off (--demo-session off)'
          : 'demo sessions are only given to loopback clients (client address and Host header both loopback) of a gateway on the development secret; set --demo-session on to allow them anyway (anyone could then act as any user)',
      );
    }
    const requested = query.get('user');
    if (requested !== null && !DEMO_USER.test(requested)) throw new HttpError(400, 'invalid_user', 'user must be 1-40 of A-Z a-z 0-9 _ -');
    const userId = requested ?? `demo-${Math.random().toString(36).slice(2, 8)}`;
    const { anon } = await deps.auth.projectKeys();
    const accessToken = await deps.auth.userToken(userId, SESSION_TTL_S);
    sendJson(res, 200, { userId, anonKey: anon, accessToken, expiresAt: Math.floor(Date.now() / 1000) + SESSION_TTL_S });
  });
}
