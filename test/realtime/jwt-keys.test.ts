// JWT verification as Supabase Realtime does it, with keys made by jose and a JWKS served
// by a local HTTP server (test/helpers/jwks-server.ts): every algorithm, tokens on every
// transport (WebSocket with supabase-js, SSE, the REST broadcast endpoints, the comments
// API), key rotation with no downtime, unknown kids, the JWKS host down at start-up and
// later, and every refusal — each answered with Supabase's wording while other clients'
// connections carry on.
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, base64url } from 'jose';
import { createLogger } from '../../src/core/log.js';
import { ConfigError, loadConfig } from '../../src/core/config.js';
import { TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { createMigratedDatabase, type TestDatabase } from '../helpers/database.js';
import { JwksServer, testKey, type TestKey } from '../helpers/jwks-server.js';
import { eventually } from '../helpers/changes.js';
import { closeClients, joined, RawClient, refusedUpgrade, startRealtimeGateway, subscribe, supabase } from './helpers.js';

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const SIGNER = 'Failed to generate JWT signer, check your JWT secret or JWKS configuration';
const signerFor = (kid: string) => `Failed to generate JWT signer for key ID (kid) ${JSON.stringify(kid)}, check your JWT secret or JWKS configuration`;
const SIGNATURE = 'Failed to validate JWT signature';

const now = (): number => Math.floor(Date.now() / 1000);
const claims = (sub = 'u1') => ({ sub, role: 'authenticated', exp: now() + 3600 });

function hsToken(alg: string, secret: string | Uint8Array, header: Record<string, unknown> = {}, body: Record<string, unknown> = claims()): Promise<string> {
  return new SignJWT(body)
    .setProtectedHeader({ alg, typ: 'JWT', ...header })
    .sign(typeof secret === 'string' ? new TextEncoder().encode(secret) : secret);
}

/** An unsecured token (`alg: none`): header and claims, empty signature. */
function unsecured(body: Record<string, unknown> = claims()): string {
  const part = (o: unknown) => base64url.encode(JSON.stringify(o));
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(body)}.`;
}

/** The WebSocket upgrade: the HTTP status and Supabase's `{error}` body when refused, 101 otherwise. */
async function wsAnswer(gw: TestGateway, token: string): Promise<{ status: number; body?: unknown }> {
  try {
    const refused = await refusedUpgrade(`${gw.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${token}&vsn=2.0.0`);
    return { status: refused.status, body: JSON.parse(refused.body) };
  } catch {
    return { status: 101 };
  }
}

/** SSE: the status and, when refused, the JSON error. */
async function sseAnswer(gw: TestGateway, token: string): Promise<{ status: number; body?: unknown }> {
  const abort = new AbortController();
  const res = await fetch(`${gw.url}/api/content/progress?access_token=${token}`, { signal: abort.signal });
  if (res.status === 200) {
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    abort.abort();
    return { status: 200 };
  }
  return { status: res.status, body: await res.json() };
}

/** The REST batch broadcast endpoint. */
async function restAnswer(gw: TestGateway, token: string, topic = 'jwt-room'): Promise<{ status: number; body?: unknown }> {
  const res = await fetch(`${gw.url}/realtime/v1/api/broadcast`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, apikey: token },
    body: JSON.stringify({ messages: [{ topic, event: 'rest', payload: { ok: true } }] }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Log lines of a gateway, to read what it said at start-up. */
function capturedLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    logger: createLogger({ level: 'info', pretty: false, destination }),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function readiness(gw: TestGateway): Promise<{ ready: boolean; check?: { ready: boolean; detail?: string } }> {
  const body = (await (await fetch(`${gw.url}/readyz`)).json()) as { ready?: boolean; status?: string; checks: { name: string; ready: boolean; detail?: string }[] };
  const check = body.checks.find((c) => c.name === 'jwks');
  return { ready: check?.ready ?? false, check };
}

afterEach(closeClients);

describe('every algorithm, on every transport', () => {
  let jwks: JwksServer;
  let gw: TestGateway;
  let db: TestDatabase;
  const keys: TestKey[] = [];

  beforeAll(async () => {
    for (const alg of ASYMMETRIC) keys.push(await testKey(alg));
    jwks = await JwksServer.start(keys.map((k) => k.jwk));
    db = await createMigratedDatabase('fanout_jwt');
    gw = await startRealtimeGateway({ jwtJwks: jwks.url, jwtJwksCooldownMs: 0, databaseUrl: db.url });
  });
  afterAll(async () => {
    await gw?.stop();
    await jwks?.stop();
    await db?.drop();
  });

  it('accepts RS256/384/512, ES256/384/512 and EdDSA by kid from the JWKS, and HS256/384/512 with the shared secret', async () => {
    const tokens: [string, string][] = [];
    for (const k of keys) tokens.push([k.alg, await k.sign(claims(`user-${k.alg}`))]);
    for (const alg of ['HS256', 'HS384', 'HS512']) tokens.push([alg, await hsToken(alg, TEST_SECRET, {}, claims(`user-${alg}`))]);
    for (const [alg, token] of tokens) {
      expect(await gw.gateway.auth.verify(token), alg).toMatchObject({ role: 'authenticated', sub: `user-${alg}` });
      expect(await wsAnswer(gw, token), `${alg} over the WebSocket`).toEqual({ status: 101 });
      expect(await sseAnswer(gw, token), `${alg} over SSE`).toEqual({ status: 200 });
      expect(await restAnswer(gw, token), `${alg} on REST broadcast`).toEqual({ status: 202, body: undefined });
    }
  });

  it('lets supabase-js with an asymmetric user token join, broadcast and refresh its token', async () => {
    const es = keys.find((k) => k.alg === 'ES256')!;
    const rs = keys.find((k) => k.alg === 'RS256')!;
    const a = supabase(gw, await es.sign(claims('alice')));
    const b = supabase(gw, await rs.sign(claims('bob')));
    const got: unknown[] = [];
    await joined(a.channel('jwt-room').on('broadcast', { event: 'hello' }, (m) => got.push(m.payload)));
    const bc = await joined(b.channel('jwt-room'));
    expect(await bc.send({ type: 'broadcast', event: 'hello', payload: { from: 'bob' } })).toBe('ok');
    await eventually(() => expect(got).toEqual([{ from: 'bob' }]));
    // A token refreshed with another algorithm's key is adopted too.
    await b.realtime.setAuth(await keys.find((k) => k.alg === 'EdDSA')!.sign(claims('bob')));
    expect(await bc.send({ type: 'broadcast', event: 'hello', payload: { from: 'bob again' } })).toBe('ok');
    await eventually(() => expect(got).toEqual([{ from: 'bob' }, { from: 'bob again' }]));
  });

  it('serves the comments API to an asymmetric token (grants and RLS see its claims)', async () => {
    const ps = keys.find((k) => k.alg === 'PS256');
    expect(ps).toBeUndefined();
    const token = await keys.find((k) => k.alg === 'ES384')!.sign(claims('carol'));
    const post = await fetch(`${gw.url}/api/projects/p1/comments`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ body: 'signed with ES384' }) });
    expect(post.status, await post.clone().text()).toBe(201);
    expect(await post.json()).toMatchObject({ project_id: 'p1', user_id: 'carol', body: 'signed with ES384' });
    const list = await fetch(`${gw.url}/api/projects/p1/comments`, { headers: { authorization: `Bearer ${token}` } });
    expect(list.status).toBe(200);
  });

  it('refuses every bad token with Supabase’s wording on every transport, and leaves other clients alone', async () => {
    const rsa = keys.find((k) => k.alg === 'RS256')!;
    const ec = keys.find((k) => k.alg === 'ES256')!;
    // A bystander with a working channel, to show refusals harm no one else.
    const bystander = supabase(gw, await ec.sign(claims('bystander')));
    const seen: unknown[] = [];
    await joined(bystander.channel('jwt-room').on('broadcast', { event: 'rest' }, (m) => seen.push(m.payload)));

    const cases: [string, string, string][] = [
      ['alg none', unsecured(), SIGNER],
      ['an RS256 public key used as an HS256 secret', await hsToken('HS256', rsa.publicPem, { kid: rsa.kid }), SIGNATURE],
      ['its JWK used as an HS256 secret', await hsToken('HS256', JSON.stringify(rsa.jwk), { kid: rsa.kid }), SIGNATURE],
      ['an ES256 token naming an RSA key', await ec.sign(claims(), { kid: rsa.kid }), signerFor(rsa.kid)],
      ['an unknown kid', await rsa.sign(claims(), { kid: 'no-such-key' }), signerFor('no-such-key')],
      ['an RS256 token without a kid', await rsa.sign(claims(), { kid: undefined }), SIGNER],
      ['PS256, which Supabase does not accept', await (await testKey('PS256')).sign(claims()), SIGNER],
      ['a signature from another key with the same kid', await (await testKey('ES256', ec.kid)).sign(claims()), SIGNATURE],
    ];
    for (const [what, token, message] of cases) {
      await expect(gw.gateway.auth.verify(token), what).rejects.toThrow(message);
      expect(await wsAnswer(gw, token), `${what}: WebSocket`).toEqual({ status: 401, body: { error: message } });
      // Over HTTP, a signature failure keeps Supabase's words and then says why (a key signed with another secret).
      const httpMessage = message === SIGNATURE ? expect.stringMatching(/^Failed to validate JWT signature: the key was signed with a different secret/) : message;
      expect(await sseAnswer(gw, token), `${what}: SSE`).toEqual({ status: 401, body: { error: { code: 'invalid_token', message: httpMessage } } });
      expect(await restAnswer(gw, token), `${what}: REST`).toEqual({ status: 401, body: { message: 'Unauthorized' } });
      const comments = await fetch(`${gw.url}/api/projects/p1/comments`, { headers: { authorization: `Bearer ${token}` } });
      expect([comments.status, await comments.json()], `${what}: comments`).toEqual([401, { error: { code: 'invalid_token', message: httpMessage } }]);
    }
    // At join (access_token in the join payload): Supabase's JwtSignerError / JwtSignatureError reasons.
    const raw = await RawClient.connect(gw);
    const join1 = await raw.join('jwt-join-1', {}, { access_token: await rsa.sign(claims(), { kid: 'gone' }) });
    expect(join1.reply[4]).toEqual({ status: 'error', response: { reason: `JwtSignerError: ${signerFor('gone')}` } });
    const join2 = await raw.join('jwt-join-2', {}, { access_token: unsecured() });
    expect(join2.reply[4]).toEqual({ status: 'error', response: { reason: `JwtSignerError: ${SIGNER}` } });
    const join3 = await raw.join('jwt-join-3', {}, { access_token: await hsToken('HS256', rsa.publicPem, { kid: rsa.kid }) });
    expect(join3.reply[4]).toEqual({ status: 'error', response: { reason: `JwtSignatureError: ${SIGNATURE}` } });
    raw.close();

    // The bystander still receives.
    expect(await restAnswer(gw, await rsa.sign(claims('sender')))).toEqual({ status: 202, body: undefined });
    await eventually(() => expect(seen).toContainEqual({ ok: true }));
    expect(bystander.realtime.connectionState()).toBe('open');
  });
});

describe('oct keys in the JWKS (Supabase’s JWT_JWKS lists the legacy HS256 secret)', () => {
  it('verifies an HS token naming an oct key with that key, and one naming no oct key with the shared secret', async () => {
    const legacy = 'legacy-secret-legacy-secret-legacy-secret-0123';
    const oct = { kty: 'oct', kid: 'legacy', k: base64url.encode(legacy), alg: 'HS256' };
    const es = await testKey('ES256');
    const gw = await startRealtimeGateway({ jwtJwks: JSON.stringify({ keys: [oct, es.jwk] }) });
    try {
      expect(await gw.gateway.auth.verify(await hsToken('HS256', legacy, { kid: 'legacy' }))).toMatchObject({ sub: 'u1' });
      // Supabase takes the oct key whatever the HS variant.
      expect(await gw.gateway.auth.verify(await hsToken('HS512', legacy, { kid: 'legacy' }))).toMatchObject({ sub: 'u1' });
      expect(await gw.gateway.auth.verify(await hsToken('HS256', TEST_SECRET, { kid: 'not-listed' }))).toMatchObject({ sub: 'u1' });
      expect(await gw.gateway.auth.verify(await hsToken('HS256', TEST_SECRET))).toMatchObject({ sub: 'u1' });
      await expect(gw.gateway.auth.verify(await hsToken('HS256', TEST_SECRET, { kid: 'legacy' }))).rejects.toThrow(SIGNATURE);
      expect(await gw.gateway.auth.verify(await es.sign(claims()))).toMatchObject({ sub: 'u1' });
    } finally {
      await gw.stop();
    }
  });
});

describe('key rotation and the JWKS host', () => {
  it('rotates with no downtime: old tokens work while their key is listed, new ones once fetched, removed keys stop', async () => {
    const k1 = await testKey('ES256', 'k1');
    const k2 = await testKey('RS256', 'k2');
    const jwks = await JwksServer.start([k1.jwk]);
    const gw = await startRealtimeGateway({ jwtJwks: jwks.url, jwtJwksCooldownMs: 0, jwtJwksRefreshMs: 1000 });
    try {
      const old = await k1.sign(claims('old'));
      expect(await wsAnswer(gw, old)).toEqual({ status: 101 });
      const client = supabase(gw, old);
      const got: unknown[] = [];
      await joined(client.channel('rotation').on('broadcast', { event: 'rest' }, (m) => got.push(m.payload)));

      // The issuer publishes k2 beside k1 and starts signing with it.
      jwks.publish([k1.jwk, k2.jwk]);
      const fresh = await k2.sign(claims('new'));
      const before = jwks.requests;
      expect(await wsAnswer(gw, fresh)).toEqual({ status: 101 });
      expect(jwks.requests).toBe(before + 1); // fetched because the token named an unknown kid
      expect(await wsAnswer(gw, await k1.sign(claims('old-again')))).toEqual({ status: 101 });
      expect(await restAnswer(gw, fresh)).toEqual({ status: 202, body: undefined });

      // k1 leaves the set: after the next refresh, its tokens (even one verified before) are refused.
      jwks.publish([k2.jwk]);
      await eventually(async () => expect(await wsAnswer(gw, old)).toEqual({ status: 401, body: { error: signerFor('k1') } }), 10_000);
      expect(await wsAnswer(gw, fresh)).toEqual({ status: 101 });
      // The connection that was already open stays open and keeps receiving.
      expect(await restAnswer(gw, fresh, 'rotation')).toEqual({ status: 202, body: undefined });
      await eventually(() => expect(got).toEqual([{ ok: true }]));
      expect(client.realtime.connectionState()).toBe('open');
    } finally {
      await gw.stop();
      await jwks.stop();
    }
  });

  it('re-fetches for unknown kids at most once per cooldown, so made-up kids cannot hammer the JWKS host', async () => {
    const k1 = await testKey('ES256', 'k1');
    const jwks = await JwksServer.start([k1.jwk]);
    const gw = await startRealtimeGateway({ jwtJwks: jwks.url, jwtJwksCooldownMs: 3_600_000 });
    try {
      const atStart = jwks.requests;
      expect(atStart).toBe(1);
      const forger = await testKey('ES256');
      for (let i = 0; i < 20; i++) {
        const token = await forger.sign(claims(), { kid: `made-up-${i}` });
        expect(await wsAnswer(gw, token)).toEqual({ status: 401, body: { error: signerFor(`made-up-${i}`) } });
      }
      expect(jwks.requests).toBe(atStart);
      expect(await wsAnswer(gw, await k1.sign(claims()))).toEqual({ status: 101 });
    } finally {
      await gw.stop();
      await jwks.stop();
    }
  });

  it('starts with the JWKS host down, says what is wrong, and takes the keys once it is up', async () => {
    const k1 = await testKey('EdDSA', 'k1');
    const jwks = await JwksServer.start([k1.jwk]);
    await jwks.stop();
    const log = capturedLogger();
    const gw = await startRealtimeGateway({ jwtJwks: jwks.url, jwtJwksCooldownMs: 0 }, { logger: log.logger });
    try {
      const said = log.lines().find((l) => String(l.msg).startsWith('could not read the JWKS'));
      expect(said?.msg).toBe(`could not read the JWKS from ${jwks.url}: fetch failed (ECONNREFUSED); tokens signed with its keys are refused until it is read`);
      expect(said?.level).toBe(50); // error
      const ready = await readiness(gw);
      expect(ready.ready).toBe(false);
      expect(ready.check?.detail).toContain('ECONNREFUSED');
      // The shared secret still works; asymmetric tokens are refused, not hung.
      expect(await wsAnswer(gw, gw.keys.anon)).toEqual({ status: 101 });
      const token = await k1.sign(claims());
      expect(await wsAnswer(gw, token)).toEqual({ status: 401, body: { error: signerFor('k1') } });

      await jwks.listen();
      expect(await wsAnswer(gw, token)).toEqual({ status: 101 });
      expect((await readiness(gw)).ready).toBe(true);
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      expect(metrics).toMatch(/fanout_jwks_reads_total\{result="error"\} [1-9]/);
      expect(metrics).toMatch(/fanout_jwks_reads_total\{result="ok"\} [1-9]/);
      expect(metrics).toMatch(/fanout_jwks_keys 1/);
    } finally {
      await gw.stop();
      await jwks.stop().catch(() => undefined);
    }
  });

  it('keeps verifying with the cached keys when the JWKS host goes down later', async () => {
    const k1 = await testKey('ES512', 'k1');
    const jwks = await JwksServer.start([k1.jwk]);
    const gw = await startRealtimeGateway({ jwtJwks: jwks.url, jwtJwksCooldownMs: 0, jwtJwksRefreshMs: 1000 });
    try {
      jwks.status = 503;
      // A refresh fails meanwhile; the gateway stays ready on the keys it holds.
      await eventually(async () => expect((await readiness(gw)).check?.detail).toContain('last refresh failed'), 10_000);
      expect((await readiness(gw)).ready).toBe(true);
      expect(await wsAnswer(gw, await k1.sign(claims('cached')))).toEqual({ status: 101 });
      expect(await sseAnswer(gw, await k1.sign(claims('cached')))).toEqual({ status: 200 });
      // An unknown kid is tried against the host (down) and refused.
      const k2 = await testKey('ES512', 'k2');
      expect(await wsAnswer(gw, await k2.sign(claims()))).toEqual({ status: 401, body: { error: signerFor('k2') } });
      await jwks.stop();
      expect(await wsAnswer(gw, await k1.sign(claims('still cached')))).toEqual({ status: 101 });
    } finally {
      await gw.stop();
    }
  });
});

describe('configuration', () => {
  it('takes a JWKS file, and refuses a missing or malformed one at start-up naming the option', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'fanout-jwks-'));
    try {
      const a = await testKey('RS256', 'a');
      const b = await testKey('ES256', 'b');
      const file = join(dir, 'jwks.json');
      writeFileSync(file, JSON.stringify({ keys: [a.jwk, b.jwk] }));
      const gw = await startRealtimeGateway({ jwtJwks: file });
      try {
        expect(await gw.gateway.auth.verify(await a.sign(claims()))).toMatchObject({ sub: 'u1' });
        expect(await gw.gateway.auth.verify(await b.sign(claims()))).toMatchObject({ sub: 'u1' });
      } finally {
        await gw.stop();
      }
      await expect(startRealtimeGateway({ jwtJwks: join(dir, 'missing.json') })).rejects.toThrow(/--jwt-jwks \(FANOUT_JWT_JWKS\): could not read the JWKS from .*missing\.json: .*ENOENT/);
      writeFileSync(join(dir, 'bad.json'), '{"not":"a jwks"}');
      await expect(startRealtimeGateway({ jwtJwks: join(dir, 'bad.json') })).rejects.toThrow(ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('validates FANOUT_JWT_JWKS when the configuration is loaded', () => {
    expect(() => loadConfig({}, { FANOUT_JWT_JWKS: '{"keys": 3}' })).toThrow(/FANOUT_JWT_JWKS=.*not a JWKS/);
    expect(() => loadConfig({}, { FANOUT_JWT_JWKS: '{not json' })).toThrow(/FANOUT_JWT_JWKS=.*not JSON/);
    expect(() => loadConfig({}, { FANOUT_JWT_JWKS: 'ftp://example.com/jwks.json' })).toThrow(/http:\/\/ or https:\/\//);
    expect(loadConfig({}, { FANOUT_JWT_JWKS: 'https://example.supabase.co/auth/v1/.well-known/jwks.json' }).jwtJwks).toContain('jwks.json');
  });

  it('refuses an asymmetric token when no JWKS is configured', async () => {
    const gw = await startRealtimeGateway();
    try {
      const token = await (await testKey('RS256', 'k')).sign(claims());
      expect(await wsAnswer(gw, token)).toEqual({ status: 401, body: { error: SIGNER } });
      const refused = await subscribe(supabase(gw, gw.keys.anon).channel('x'));
      expect(refused.status).toBe('SUBSCRIBED');
    } finally {
      await gw.stop();
    }
  });
});

describe('fanout keys with a private key', () => {
  const fanout = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    const { execFile } = await import('node:child_process');
    return new Promise((resolve) => {
      execFile(process.execPath, ['bin/fanout.js', 'keys', ...args], { env: { ...process.env, FANOUT_JWT_SECRET: TEST_SECRET } }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  };

  it('signs with a PKCS#8 PEM or a private JWK, and generates rotating key pairs a gateway verifies through --jwt-jwks', async () => {
    const { mkdtempSync, writeFileSync, rmSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { exportJWK, exportPKCS8, generateKeyPair } = await import('jose');
    const dir = mkdtempSync(join(tmpdir(), 'fanout-keys-'));
    try {
      // Two key pairs made by `fanout keys --generate-key`: one JWKS file lists both.
      const first = await fanout('--data-dir', dir, '--generate-key', 'ES256', '--kid', 'first', '--user', 'u1', '--json');
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toContain(`--jwt-jwks ${join(dir, 'jwt-keys', 'jwks.json')}`);
      const second = await fanout('--data-dir', dir, '--generate-key', 'RS256', '--json');
      expect(second.code, second.stderr).toBe(0);
      const jwksFile = join(dir, 'jwt-keys', 'jwks.json');
      const listed = (JSON.parse(readFileSync(jwksFile, 'utf8')) as { keys: { kid: string; d?: string }[] }).keys;
      const secondKid = (JSON.parse(second.stdout) as { kid: string }).kid;
      expect(listed.map((k) => k.kid)).toEqual(['first', secondKid]);
      expect(listed.every((k) => k.d === undefined)).toBe(true);

      // A PEM and a JWK of the test's own.
      const pair = await generateKeyPair('ES384', { extractable: true });
      writeFileSync(join(dir, 'es384.pem'), await exportPKCS8(pair.privateKey));
      const okp = await generateKeyPair('EdDSA', { extractable: true });
      writeFileSync(join(dir, 'ed.jwk.json'), JSON.stringify({ ...(await exportJWK(okp.privateKey)), kid: 'ed' }));
      const pem = await fanout('--private-key', join(dir, 'es384.pem'), '--kid', 'pem', '--user', 'u2', '--json');
      expect(pem.code, pem.stderr).toBe(0);
      const ed = await fanout('--private-key', join(dir, 'ed.jwk.json'), '--json');
      expect(ed.code, ed.stderr).toBe(0);
      expect(JSON.parse(ed.stdout)).toMatchObject({ kid: 'ed', alg: 'EdDSA' });
      const jwks = JSON.parse(readFileSync(jwksFile, 'utf8')) as { keys: unknown[] };
      jwks.keys.push({ ...(await exportJWK(pair.publicKey)), kid: 'pem' }, { ...(await exportJWK(okp.publicKey)), kid: 'ed' });
      writeFileSync(jwksFile, JSON.stringify(jwks));

      const gw = await startRealtimeGateway({ jwtJwks: jwksFile });
      try {
        const tokens = [first, second, pem, ed].map((r) => JSON.parse(r.stdout) as Record<string, string>);
        expect(await gw.gateway.auth.verify(tokens[0]!.user)).toMatchObject({ role: 'authenticated', sub: 'u1' });
        expect(await gw.gateway.auth.verify(tokens[1]!.service_role)).toMatchObject({ role: 'service_role' });
        expect(await gw.gateway.auth.verify(tokens[2]!.user)).toMatchObject({ role: 'authenticated', sub: 'u2' });
        expect(await gw.gateway.auth.verify(tokens[3]!.anon)).toMatchObject({ role: 'anon' });
        expect(await wsAnswer(gw, tokens[0]!.anon!)).toEqual({ status: 101 });
      } finally {
        await gw.stop();
      }

      const publicOnly = await fanout('--private-key', jwksFile);
      expect(publicOnly).toMatchObject({ code: 2, stderr: expect.stringContaining('is a JWKS (public keys): signing needs a private key') });
      const both = await fanout('--private-key', join(dir, 'es384.pem'), '--generate-key', 'ES256');
      expect(both).toMatchObject({ code: 2, stderr: expect.stringContaining('cannot be used together') });
      const badAlg = await fanout('--data-dir', dir, '--generate-key', 'HS256');
      expect(badAlg).toMatchObject({ code: 2, stderr: expect.stringContaining('algorithm HS256 is not one of') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
