// Finding 6 of issue 13: on the development secret, a loopback request with
// `Host: evil.example:P` and `Origin: http://evil.example:P` (a DNS-rebound page of another
// site, running in the developer's own browser) got 200 and a token for any `?user=`. Now
// `/demo/session` answers only when the client address and the Host header are both loopback.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

let dev: TestGateway;
beforeAll(async () => {
  dev = await startGateway({ jwtSecret: undefined }); // the generated development secret: demo sessions on (auto)
});
afterAll(() => dev.stop());

/** GET over a raw socket, so Host can be anything (fetch does not let a caller set it). */
function get(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const url = new URL(dev.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('/demo/session and DNS rebinding (finding 6)', () => {
  it('refuses a loopback request whose Host names another site, and hands out no token', async () => {
    const port = new URL(dev.url).port;
    const res = await get('/demo/session?user=victim', { host: `evil.example:${port}`, origin: `http://evil.example:${port}` });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body).error.code).toBe('demo_session_disabled');
    expect(res.body).not.toMatch(/accessToken|anonKey/);
  });

  it('still answers loopback Hosts: 127.0.0.1, localhost and [::1]', async () => {
    const port = new URL(dev.url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      const res = await get('/demo/session?user=dev', { host, origin: `http://${host}` });
      expect(res.status, host).toBe(200);
      expect(JSON.parse(res.body).userId).toBe('dev');
    }
  });
});
