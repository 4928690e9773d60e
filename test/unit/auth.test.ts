import { describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { Auth, AuthError, tokenFromRequest } from '../../src/core/auth.js';

const auth = new Auth('x'.repeat(40));

async function failureOf(token: string | undefined): Promise<AuthError> {
  try {
    await auth.verify(token);
  } catch (err) {
    if (err instanceof AuthError) return err;
    throw err;
  }
  throw new Error('expected verification to fail');
}

describe('Auth', () => {
  it('signs project keys that verify with their roles', async () => {
    const keys = await auth.projectKeys();
    expect((await auth.verify(keys.anon)).role).toBe('anon');
    expect((await auth.verify(keys.service_role)).role).toBe('service_role');
    const user = await auth.verify(await auth.userToken('u1'));
    expect(user).toMatchObject({ role: 'authenticated', sub: 'u1' });
  });

  it('classifies failures with Supabase wording', async () => {
    expect((await failureOf(undefined)).message).toBe('API key is missing');
    expect((await failureOf('nope')).kind).toBe('malformed');
    expect((await failureOf('a.b.c')).kind).toBe('malformed');
    const other = await new Auth('y'.repeat(40)).projectKeys();
    expect((await failureOf(other.anon)).message).toBe('Failed to validate JWT signature');
    const expired = await auth.sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) - 30 });
    const e = await failureOf(expired);
    expect(e.kind).toBe('expired');
    expect(e.message).toMatch(/^Token has expired \d+ seconds ago$/);
    const noRole = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode('x'.repeat(40)));
    expect((await failureOf(noRole)).kind).toBe('claims');
  });

  it('finds the token in the Authorization header, the apikey header or the query', () => {
    expect(tokenFromRequest({ authorization: 'Bearer abc' }, new URLSearchParams())).toBe('abc');
    expect(tokenFromRequest({ apikey: 'k' }, new URLSearchParams())).toBe('k');
    expect(tokenFromRequest({}, new URLSearchParams('access_token=t'))).toBe('t');
    expect(tokenFromRequest({}, new URLSearchParams('apikey=q'))).toBe('q');
    expect(tokenFromRequest({}, new URLSearchParams())).toBeUndefined();
  });
});
