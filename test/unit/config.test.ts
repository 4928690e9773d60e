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
