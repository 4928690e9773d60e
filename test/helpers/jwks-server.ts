// A JWKS endpoint of the test's own, as GoTrue serves one at /auth/v1/.well-known/jwks.json:
// the test decides which public keys it lists (and rotates them mid-test), makes it answer
// 503 or stops it outright, and counts how often the gateway fetched it. Plus key pairs
// made with jose, each able to sign tokens with its kid in the header.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK } from 'jose';

export const JWKS_PATH = '/auth/v1/.well-known/jwks.json';

export class JwksServer {
  /** Successful and failed GETs of the JWKS path. */
  requests = 0;
  /** Answer with this status (503: the host is up, the service is not). */
  status = 200;
  private keys: JWK[] = [];
  private server: Server;
  private port = 0;

  private constructor() {
    this.server = this.makeServer();
  }

  static async start(keys: JWK[] = []): Promise<JwksServer> {
    const s = new JwksServer();
    s.keys = keys;
    await s.listen();
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}${JWKS_PATH}`;
  }

  /** Lists exactly these keys from now on. */
  publish(keys: JWK[]): void {
    this.keys = keys;
  }

  /** Stops listening: fetches fail with ECONNREFUSED until `listen` again (same port). */
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server = this.makeServer();
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  private makeServer(): Server {
    return createServer((req, res) => {
      if (req.url !== JWKS_PATH) {
        res.writeHead(404).end();
        return;
      }
      this.requests++;
      if (this.status !== 200) {
        res.writeHead(this.status, { 'content-type': 'text/plain' }).end('unavailable');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=600' }).end(JSON.stringify({ keys: this.keys }));
    });
  }
}

export interface TestKey {
  alg: string;
  kid: string;
  /** The public key as the JWKS lists it. */
  jwk: JWK;
  /** The public key as SPKI PEM text (what an attacker would use as an HMAC secret). */
  publicPem: string;
  /** A token with these claims (`exp` one hour ahead unless given), signed by the private key, kid in the header. */
  sign(claims: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
}

export async function testKey(alg: string, kid = `${alg.toLowerCase()}-${Math.random().toString(36).slice(2, 8)}`): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return {
    alg,
    kid,
    jwk,
    publicPem: await exportSPKI(publicKey),
    sign: (claims, header = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg, kid, typ: 'JWT', ...header })
        .setIssuedAt()
        .setExpirationTime(typeof claims.exp === 'number' ? claims.exp : '1h')
        .sign(privateKey),
  };
}
