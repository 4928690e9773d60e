// Target safety rules and source-address planning.
import { describe, expect, it } from 'vitest';
import { SOCKETS_PER_SOURCE_ADDRESS, TargetRefusedError, allocateSourceAddresses, checkTarget, isLoopbackHost, normalizeLoopback } from '../../src/load/target.js';
import { preflight } from '../../src/load/preflight.js';

describe('targets', () => {
  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.9.8.7', 'localhost', '::1', '[::1]', 'api.localhost']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['10.0.0.1', 'example.com', '::2', '128.0.0.1', 'xyz.supabase.co']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('refuses remote targets without --allow-remote, and fault injection against any remote target', () => {
    expect(() => checkTarget('https://xyz.supabase.co', { allowRemote: false })).toThrow(/--allow-remote/);
    expect(checkTarget('https://xyz.supabase.co', { allowRemote: true }).host).toBe('xyz.supabase.co');
    expect(() => checkTarget('https://xyz.supabase.co', { allowRemote: true, faults: true })).toThrow(/fault injection is only run against loopback/);
    expect(checkTarget('http://127.0.0.1:4000', { allowRemote: false, faults: true }).port).toBe('4000');
    expect(() => checkTarget('ftp://127.0.0.1', { allowRemote: true })).toThrow(TargetRefusedError);
    expect(() => checkTarget('not a url', { allowRemote: true })).toThrow(/not a URL/);
    expect(normalizeLoopback('http://localhost:4000/')).toBe('http://127.0.0.1:4000');
  });
});

describe('source addresses', () => {
  it('gives each worker its own 127.0.0.x, enough to keep each under the per-address cap, rotating between runs', () => {
    const a = allocateSourceAddresses('http://127.0.0.1:4000', 2, 9500)!;
    expect(a).toHaveLength(2);
    expect(a[0]!.length).toBe(Math.ceil(9500 / SOCKETS_PER_SOURCE_ADDRESS));
    const all = a.flat();
    expect(new Set(all).size).toBe(all.length);
    for (const addr of all) expect(addr).toMatch(/^127\.0\.0\.(\d+)$/);
    const next = allocateSourceAddresses('http://127.0.0.1:4000', 2, 100)!.flat();
    for (const addr of next) expect(all).not.toContain(addr); // the last run's TIME_WAIT ports stay untouched
    expect(allocateSourceAddresses('http://[::1]:4000', 2, 100)).toBeNull();
    expect(allocateSourceAddresses('https://xyz.supabase.co', 2, 100)).toBeNull();
  });

  it('pre-flight adds workers for the open-file limit and warns about ephemeral ports from one address', () => {
    expect(preflight(30_000, 2, 'spread', { files: 20_000, ports: 28_232 })).toEqual({ workers: 2, notes: [] });
    const more = preflight(50_000, 2, 'spread', { files: 20_000, ports: 28_232 });
    expect(more.workers).toBe(3);
    expect(more.notes[0]).toMatch(/need 3 generator processes/);
    expect(preflight(27_000, 2, null, { files: 20_000, ports: 28_232 }).notes[0]).toMatch(/exceed 90% of the 28232 ephemeral ports/);
  });
});
