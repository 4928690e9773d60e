import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/core/config.js';

describe('loadConfig', () => {
  it('takes flags over environment over defaults', () => {
    const cfg = loadConfig({ port: '5000' }, { PORT: '6000', FANOUT_HISTORY_SIZE: '50' });
    expect(cfg.port).toBe(5000);
    expect(cfg.historySize).toBe(50);
    expect(cfg.heartbeatMs).toBe(15_000);
  });

  it('names every bad flag and variable in one error', () => {
    let err: unknown;
    try {
      loadConfig({ port: 'abc' }, { FANOUT_HEARTBEAT_MS: '-5', FANOUT_JWT_SECRET: 'short' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain('--port="abc"');
    expect(msg).toContain('FANOUT_HEARTBEAT_MS');
    expect(msg).toContain('FANOUT_JWT_SECRET');
  });

  it('requires the TLS certificate and key together', () => {
    expect(() => loadConfig({ tlsCert: 'a.pem' }, {})).toThrow(/--tls-cert and --tls-key/);
  });
});

describe('identity and role options', () => {
  it('refuses a bad --trusted-proxies entry and a bad --allowed-roles entry, naming them', () => {
    expect(() => loadConfig({ trustedProxies: '10.0.0.0/8,not-an-address' })).toThrow(/--trusted-proxies="10.0.0.0\/8,not-an-address": "not-an-address" is not an address, a CIDR/);
    expect(() => loadConfig({}, { FANOUT_ALLOWED_ROLES: 'anon,bad role' })).toThrow(/FANOUT_ALLOWED_ROLES="anon,bad role": "bad role" is not a PostgreSQL role name/);
    expect(() => loadConfig({ allowedRoles: ' , ' })).toThrow(/name at least one role/);
    const cfg = loadConfig({ trustedProxies: 'loopback,10.0.0.0/8', allowedRoles: 'anon,authenticated' });
    expect([cfg.trustedProxies, cfg.allowedRoles]).toEqual(['loopback,10.0.0.0/8', 'anon,authenticated']);
  });
});
