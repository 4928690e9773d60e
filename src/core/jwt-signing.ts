// Signing keys for the tokens Fanout itself issues (`fanout keys`, the demo session): the
// shared HS256 secret by default, or a private key (RSA, EC P-256/384/521, Ed25519) so
// development and tests can use the same asymmetric tokens a GoTrue with signing keys
// issues. Also makes new key pairs, writing the private JWK and adding the public key to a
// JWKS file, so a key can be rotated by generating the next one beside it.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8, type JWK } from 'jose';
import { ASYMMETRIC_ALGORITHMS, parseJwks } from './jwt-keys.js';

export interface SigningKey {
  alg: string;
  /** Written into the token header so verifiers pick the matching public key. */
  kid?: string;
  key: CryptoKey | Uint8Array;
}

/** The algorithm a key type signs with when none is named: the ones GoTrue uses. */
function defaultAlgorithm(jwk: JWK): string | undefined {
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'EC') return ({ 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' } as Record<string, string>)[jwk.crv ?? ''];
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  return undefined;
}

function checkAlgorithm(alg: string): void {
  if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) throw new Error(`algorithm ${alg} is not one of ${ASYMMETRIC_ALGORITHMS.join(', ')}`);
}

/**
 * Reads a private key for signing: a JWK (JSON, with `d`) or a PKCS#8 PEM. The algorithm
 * and kid come from the options, else from the JWK, else from the key type and the RFC 7638
 * thumbprint of the public key. Throws saying what is wrong with the file.
 */
export async function loadSigningKey(path: string, options: { alg?: string; kid?: string } = {}): Promise<SigningKey> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the private key ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  let jwk: JWK;
  let key: CryptoKey;
  if (text.trimStart().startsWith('{')) {
    try {
      jwk = JSON.parse(text) as JWK;
    } catch (err) {
      throw new Error(`${path} is neither a PEM private key nor JSON: ${(err as Error).message}`, { cause: err });
    }
    if (Array.isArray((jwk as { keys?: unknown }).keys)) throw new Error(`${path} is a JWKS (public keys): signing needs a private key (a JWK with "d")`);
    if (typeof jwk.d !== 'string') throw new Error(`${path} is a public JWK: signing needs the private key (a JWK with "d")`);
    const alg = options.alg ?? jwk.alg ?? defaultAlgorithm(jwk);
    if (!alg) throw new Error(`${path}: cannot tell the algorithm of a ${jwk.kty} key; pass --alg`);
    checkAlgorithm(alg);
    key = (await importJWK(jwk, alg, { extractable: true })) as CryptoKey;
    return { alg, kid: options.kid ?? jwk.kid ?? (await thumbprint(jwk)), key };
  }
  if (!text.includes('-----BEGIN PRIVATE KEY-----')) throw new Error(`${path} is not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----) or a private JWK`);
  // The algorithm decides how PKCS#8 is imported; find the key type with a first guess.
  let alg = options.alg;
  if (!alg) {
    for (const candidate of ['RS256', 'ES256', 'ES384', 'ES512', 'EdDSA']) {
      try {
        jwk = await exportJWK(await importPKCS8(text, candidate, { extractable: true }));
        alg = defaultAlgorithm(jwk);
        if (alg) break;
      } catch {
        // not this key type
      }
    }
    if (!alg) throw new Error(`${path}: cannot tell the algorithm of this key; pass --alg`);
  }
  checkAlgorithm(alg);
  try {
    key = await importPKCS8(text, alg, { extractable: true });
  } catch (err) {
    throw new Error(`${path} cannot sign ${alg}: ${(err as Error).message}`, { cause: err });
  }
  return { alg, kid: options.kid ?? (await thumbprint(await exportJWK(key))), key };
}

async function thumbprint(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(jwk, 'sha256');
}

export interface GeneratedKey {
  kid: string;
  alg: string;
  privateKeyPath: string;
  jwksPath: string;
  /** Every public key now in the JWKS file (the new one last). */
  kids: string[];
}

/**
 * Makes a key pair for `alg`, writes the private JWK to `<dir>/<kid>.private.jwk.json`
 * (mode 0600) and adds the public JWK to `<dir>/jwks.json`, keeping the keys already
 * there (rotation: verifiers accept old and new while both are listed).
 */
export async function generateSigningKey(dir: string, alg: string, kid?: string): Promise<GeneratedKey> {
  checkAlgorithm(alg);
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const id = kid ?? (await thumbprint(publicJwk));
  const jwksPath = join(dir, 'jwks.json');
  const privateKeyPath = join(dir, `${id}.private.jwk.json`);
  const existing = existsSync(jwksPath) ? parseJwks(readFileSync(jwksPath, 'utf8')).keys : [];
  if (existing.some((k) => k.kid === id)) throw new Error(`${jwksPath} already has a key with kid ${id}`);
  const keys = [...existing, { ...publicJwk, kid: id, alg, use: 'sig', key_ops: ['verify'] }];
  mkdirSync(dirname(privateKeyPath), { recursive: true });
  writeFileSync(privateKeyPath, JSON.stringify({ ...(await exportJWK(privateKey)), kid: id, alg }, null, 2) + '\n', { mode: 0o600 });
  chmodSync(privateKeyPath, 0o600);
  writeFileSync(jwksPath, JSON.stringify({ keys }, null, 2) + '\n');
  return { kid: id, alg, privateKeyPath, jwksPath, kids: keys.map((k) => k.kid as string) };
}
