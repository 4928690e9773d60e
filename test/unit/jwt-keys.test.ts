// The key set behind --jwt-jwks, without a gateway: how a key is chosen for a header, a
// file re-read when a token names a kid it does not have, private members never used, and
// the rules for what --jwt-jwks may name.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { createLogger } from '../../src/core/log.js';
import { JwtKeySet, parseJwksSource, SignerError, type JwksSource } from '../../src/core/jwt-keys.js';
import { testKey } from '../helpers/jwks-server.js';

const log = createLogger({ level: 'silent' });
const SECRET = new TextEncoder().encode('s'.repeat(40));
const dir = mkdtempSync(join(tmpdir(), 'fanout-jwt-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function keySet(source: JwksSource, cooldownMs = 0): Promise<JwtKeySet> {
  const set = new JwtKeySet({ source, cooldownMs, refreshMs: 3_600_000, log });
  await set.start();
  return set;
}

describe('JwtKeySet', () => {
  it('re-reads a file when a token names a kid it does not hold, within the cooldown only once', async () => {
    const a = await testKey('ES256', 'a');
    const b = await testKey('ES256', 'b');
    const file = join(dir, 'rotating.json');
    writeFileSync(file, JSON.stringify({ keys: [a.jwk] }));
    const set = await keySet({ kind: 'file', path: file });
    writeFileSync(file, JSON.stringify({ keys: [a.jwk, b.jwk] }));
    const token = await b.sign({ role: 'anon' });
    const { payload } = await jwtVerify(token, (h) => set.verificationKey(h, SECRET));
    expect(payload.role).toBe('anon');
    expect(set.status().kids).toEqual(['a', 'b']);

    const slow = await keySet({ kind: 'file', path: file }, 3_600_000);
    const c = await testKey('ES256', 'c');
    writeFileSync(file, JSON.stringify({ keys: [a.jwk, b.jwk, c.jwk] }));
    await expect(jwtVerify(await c.sign({ role: 'anon' }), (h) => slow.verificationKey(h, SECRET))).rejects.toThrow(SignerError);
    expect(slow.status().kids).toEqual(['a', 'b']);
    set.close();
    slow.close();
  });

  it('takes the first of two keys listed under one kid, as Supabase does, and never a private member', async () => {
    const first = await testKey('RS256', 'same');
    const second = await testKey('RS256', 'same');
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const privateJwk = { ...(await exportJWK(privateKey)), kid: 'leaked', alg: 'ES256' };
    const set = await keySet({ kind: 'inline', jwks: { keys: [first.jwk, second.jwk, privateJwk] } });
    const { payload } = await jwtVerify(await first.sign({ role: 'anon' }), (h) => set.verificationKey(h, SECRET));
    expect(payload.role).toBe('anon');
    // A private JWK listed by mistake is held as its public half: a token it signed verifies
    // (imported with "d", the key would be a private key, which cannot verify).
    const token = await new SignJWT({ role: 'anon' }).setProtectedHeader({ alg: 'ES256', kid: 'leaked' }).sign(privateKey);
    expect((await jwtVerify(token, (h) => set.verificationKey(h, SECRET))).payload.role).toBe('anon');
    set.close();
  });

  it('chooses by algorithm family: HS with the secret or an oct key, others only by kid and key type', async () => {
    const rsa = await testKey('RS256', 'r');
    const set = await keySet({ kind: 'inline', jwks: { keys: [rsa.jwk, { kty: 'oct', kid: 'o', k: 'c2VjcmV0' }] } });
    expect(await set.verificationKey({ alg: 'HS256' }, SECRET)).toBe(SECRET);
    expect(await set.verificationKey({ alg: 'HS384', kid: 'r' }, SECRET)).toBe(SECRET);
    expect(Buffer.from(await set.verificationKey({ alg: 'HS512', kid: 'o' }, SECRET) as Uint8Array).toString()).toBe('secret');
    await expect(set.verificationKey({ alg: 'none' }, SECRET)).rejects.toMatchObject({ kid: undefined, reason: 'algorithm "none" is not accepted' });
    await expect(set.verificationKey({ alg: 'RS256' }, SECRET)).rejects.toMatchObject({ kid: undefined });
    await expect(set.verificationKey({ alg: 'ES256', kid: 'r' }, SECRET)).rejects.toMatchObject({ kid: 'r' });
    await expect(set.verificationKey({ alg: 'RS256', kid: 'o' }, SECRET)).rejects.toMatchObject({ kid: 'o' });
    expect(await set.verificationKey({ alg: 'RS256', kid: 'r' }, SECRET)).toBeDefined();
    set.close();
  });
});

describe('parseJwksSource', () => {
  it('tells inline JSON, URLs and files apart, and says what is wrong', () => {
    expect(parseJwksSource(' {"keys":[]} ')).toEqual({ kind: 'inline', jwks: { keys: [] } });
    expect(parseJwksSource('https://x.supabase.co/auth/v1/.well-known/jwks.json')).toEqual({ kind: 'url', url: 'https://x.supabase.co/auth/v1/.well-known/jwks.json' });
    expect(parseJwksSource('http://auth:9999/.well-known/jwks.json').kind).toBe('url');
    expect(parseJwksSource('./keys/jwks.json')).toEqual({ kind: 'file', path: './keys/jwks.json' });
    expect(() => parseJwksSource('{"keys":[{"kid":"no-kty"}]}')).toThrow('keys[0] is not a JWK (no "kty")');
    expect(() => parseJwksSource('s3://bucket/jwks.json')).toThrow('a JWKS URL must be http:// or https://');
  });
});
