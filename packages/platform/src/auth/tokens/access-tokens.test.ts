import { createPublicKey, type KeyObject } from 'node:crypto';
import { base64url, decodeJwt, decodeProtectedHeader, type JWTPayload, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { toProblem } from '../../errors/index.ts';
import {
  ACCESS_TOKEN_CLOCK_TOLERANCE_SECONDS,
  type AccessTokensOptions,
  createAccessTokens,
} from './access-tokens.ts';
import { generateSigningKeyEntry, parseSigningKeys, type SigningKeySet } from './signing-keys.ts';
import {
  catchAccessTokenError,
  catchTokensError,
  createFakeClock,
  createSequentialIds,
  privateKeyOf,
} from './tokens.test-support.ts';

const ISSUER = 'keel';
const AUDIENCE = 'keel-api';
const TTL_SECONDS = 900;

async function setUp(overrides: Partial<AccessTokensOptions> & { entries?: string[] } = {}) {
  const entries = overrides.entries ?? [generateSigningKeyEntry('k1')];
  const keys = overrides.keys ?? (await parseSigningKeys(entries.join(',')));
  const clock = createFakeClock();
  const accessTokens = createAccessTokens({
    keys,
    issuer: ISSUER,
    audience: AUDIENCE,
    ttlSeconds: TTL_SECONDS,
    clock,
    ids: createSequentialIds(),
    ...overrides,
  });
  return { accessTokens, keys, clock, entries };
}

function buildIssueInput(
  overrides: Partial<{ subject: string; sessionId: string; authenticationMethods: string[] }> = {},
) {
  return { subject: 'user-1', sessionId: 'session-1', authenticationMethods: ['pwd'], ...overrides };
}

/** A claims set that would pass, at `now`, unless overridden. */
function buildClaims(now: Date, overrides: JWTPayload = {}): JWTPayload {
  const iat = Math.floor(now.getTime() / 1000);
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'user-1',
    sid: 'session-1',
    amr: ['pwd'],
    iat,
    exp: iat + TTL_SECONDS,
    jti: 'token-1',
    ...overrides,
  };
}

/** Signs whatever header and claims a test needs, the way a holder of `key` could. */
function signRaw(
  key: KeyObject | Uint8Array,
  header: { alg: string; [member: string]: unknown },
  claims: JWTPayload,
) {
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

function encodeJson(value: unknown): string {
  return base64url.encode(JSON.stringify(value));
}

/** The token with one bit of its signature flipped. */
function flipSignatureBit(token: string): string {
  const [header, payload, signature] = token.split('.');
  const bytes = base64url.decode(signature ?? '');
  bytes[0] = (bytes[0] ?? 0) ^ 0x01;
  return `${header}.${payload}.${base64url.encode(bytes)}`;
}

/** A key set whose key lookups are counted, to tell a cache hit from a verification. */
function countingLookups(keys: SigningKeySet) {
  const counter = { lookups: 0 };
  const counted: SigningKeySet = {
    ...keys,
    publicKeyFor(kid) {
      counter.lookups += 1;
      return keys.publicKeyFor(kid);
    },
  };
  return { counted, counter };
}

describe('issue and verify', () => {
  it('returns the issued claims when verifying a freshly issued token', async () => {
    const { accessTokens, clock } = await setUp();
    const issuedAt = clock.now();
    const { token, expiresAt } = await accessTokens.issue(
      buildIssueInput({ authenticationMethods: ['pwd', 'otp'] }),
    );
    expect(expiresAt).toEqual(new Date(issuedAt.getTime() + TTL_SECONDS * 1000));
    await expect(accessTokens.verify(token)).resolves.toEqual({
      subject: 'user-1',
      sessionId: 'session-1',
      authenticationMethods: ['pwd', 'otp'],
      issuedAt,
      expiresAt,
      tokenId: '00000000-0000-4000-8000-000000000001',
    });
  });

  it('writes an RFC 9068 header and the registered claims into the token', async () => {
    const { accessTokens, clock } = await setUp();
    const { token } = await accessTokens.issue(buildIssueInput());
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k1' });
    const iat = clock.now().getTime() / 1000;
    expect(decodeJwt(token)).toEqual({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'user-1',
      sid: 'session-1',
      amr: ['pwd'],
      iat,
      exp: iat + TTL_SECONDS,
      jti: '00000000-0000-4000-8000-000000000001',
    });
  });

  it('gives each token its own jti', async () => {
    const { accessTokens } = await setUp();
    const first = await accessTokens.issue(buildIssueInput());
    const second = await accessTokens.issue(buildIssueInput());
    expect((await accessTokens.verify(first.token)).tokenId).not.toBe(
      (await accessTokens.verify(second.token)).tokenId,
    );
  });

  it.each([
    ['no authentication method', { authenticationMethods: [] }],
    ['an unknown authentication method', { authenticationMethods: ['pwd', 'sms'] }],
    ['an empty subject', { subject: '' }],
    ['an empty session id', { sessionId: '' }],
  ])('refuses to issue with auth.invalid_token_input when given %s', async (_, overrides) => {
    const { accessTokens } = await setUp();
    const error = await catchTokensError(() => accessTokens.issue(buildIssueInput(overrides)));
    expect(error.code).toBe('auth.invalid_token_input');
  });

  it.each([
    ['a zero TTL', { ttlSeconds: 0 }],
    ['a fractional TTL', { ttlSeconds: 1.5 }],
    ['a negative cache size', { cacheSize: -1 }],
    ['an empty issuer', { issuer: '' }],
  ])('rejects with auth.invalid_token_input when created with %s', async (_, overrides) => {
    const keys = await parseSigningKeys(generateSigningKeyEntry('k1'));
    const error = await catchTokensError(() =>
      createAccessTokens({
        keys,
        issuer: ISSUER,
        audience: AUDIENCE,
        ttlSeconds: TTL_SECONDS,
        clock: createFakeClock(),
        ids: createSequentialIds(),
        ...overrides,
      }),
    );
    expect(error.code).toBe('auth.invalid_token_input');
  });
});

describe('verify refuses', () => {
  it('rejects with reason algorithm when the token says alg none and has no signature', async () => {
    const { accessTokens, clock } = await setUp();
    const token = `${encodeJson({ alg: 'none', typ: 'at+jwt', kid: 'k1' })}.${encodeJson(buildClaims(clock.now()))}.`;
    expect((await catchAccessTokenError(() => accessTokens.verify(token))).reason).toBe('algorithm');
  });

  it.each([
    [
      'PEM',
      (entry: string) =>
        createPublicKey(privateKeyOf(entry)).export({ format: 'pem', type: 'spki' }).toString(),
    ],
    ['JWK x', (entry: string) => createPublicKey(privateKeyOf(entry)).export({ format: 'jwk' }).x ?? ''],
  ])(
    'rejects with reason algorithm when the token is HS256 keyed with the public key (%s) as the HMAC secret',
    async (_, publicKeyText) => {
      const { accessTokens, clock, entries } = await setUp();
      const secret = new TextEncoder().encode(publicKeyText(entries[0] ?? ''));
      const token = await signRaw(
        secret,
        { alg: 'HS256', typ: 'at+jwt', kid: 'k1' },
        buildClaims(clock.now()),
      );
      expect((await catchAccessTokenError(() => accessTokens.verify(token))).reason).toBe('algorithm');
    },
  );

  it('rejects with reason unknown_kid when the kid is not configured', async () => {
    const { accessTokens, clock, entries } = await setUp();
    const token = await signRaw(
      privateKeyOf(entries[0] ?? ''),
      { alg: 'EdDSA', typ: 'at+jwt', kid: 'k9' },
      buildClaims(clock.now()),
    );
    expect((await catchAccessTokenError(() => accessTokens.verify(token))).reason).toBe('unknown_kid');
  });

  it('rejects with reason unknown_kid when the header has no kid, even if the only key signed it', async () => {
    const { accessTokens, clock, entries } = await setUp();
    const token = await signRaw(
      privateKeyOf(entries[0] ?? ''),
      { alg: 'EdDSA', typ: 'at+jwt' },
      buildClaims(clock.now()),
    );
    expect((await catchAccessTokenError(() => accessTokens.verify(token))).reason).toBe('unknown_kid');
  });

  it('rejects with reason bad_signature when one bit of the signature is flipped', async () => {
    const { accessTokens } = await setUp();
    const { token } = await accessTokens.issue(buildIssueInput());
    const error = await catchAccessTokenError(() => accessTokens.verify(flipSignatureBit(token)));
    expect(error.reason).toBe('bad_signature');
  });

  it('rejects with reason bad_signature when the claims were altered after signing', async () => {
    const { accessTokens, clock } = await setUp();
    const { token } = await accessTokens.issue(buildIssueInput());
    const [header, , signature] = token.split('.');
    const forged = `${header}.${encodeJson(buildClaims(clock.now(), { sub: 'admin' }))}.${signature}`;
    expect((await catchAccessTokenError(() => accessTokens.verify(forged))).reason).toBe('bad_signature');
  });

  it('rejects with reason bad_signature when another Ed25519 key signed under the same kid', async () => {
    const { accessTokens: verifier } = await setUp();
    const { accessTokens: impostor } = await setUp();
    const { token } = await impostor.issue(buildIssueInput());
    expect(decodeProtectedHeader(token).kid).toBe('k1');
    expect((await catchAccessTokenError(() => verifier.verify(token))).reason).toBe('bad_signature');
  });

  it('accepts a token just past exp within the clock tolerance', async () => {
    const { accessTokens, clock } = await setUp();
    const { token } = await accessTokens.issue(buildIssueInput());
    clock.advanceSeconds(TTL_SECONDS + ACCESS_TOKEN_CLOCK_TOLERANCE_SECONDS - 1);
    await expect(accessTokens.verify(token)).resolves.toMatchObject({ subject: 'user-1' });
  });

  it('rejects with reason expired when the clock is past exp plus the tolerance', async () => {
    const { accessTokens, clock } = await setUp({ cacheSize: 0 });
    const { token } = await accessTokens.issue(buildIssueInput());
    clock.advanceSeconds(TTL_SECONDS + ACCESS_TOKEN_CLOCK_TOLERANCE_SECONDS);
    expect((await catchAccessTokenError(() => accessTokens.verify(token))).reason).toBe('expired');
  });

  it.each([
    ['the audience is another API', { audience: 'other-api' }],
    ['the issuer is another issuer', { issuer: 'someone-else' }],
  ])('rejects with reason claims when %s', async (_, foreign) => {
    const { accessTokens, keys } = await setUp();
    const { accessTokens: foreignIssuer } = await setUp({ keys, ...foreign });
    const { token } = await foreignIssuer.issue(buildIssueInput());
    expect((await catchAccessTokenError(() => accessTokens.verify(token))).reason).toBe('claims');
  });

  it.each([
    ['typ is JWT', { typ: 'JWT' }],
    ['typ is missing', {}],
  ])('rejects with reason claims when %s', async (_, typ) => {
    const { accessTokens, clock, entries } = await setUp();
    const token = await signRaw(
      privateKeyOf(entries[0] ?? ''),
      { alg: 'EdDSA', kid: 'k1', ...typ },
      buildClaims(clock.now()),
    );
    expect((await catchAccessTokenError(() => accessTokens.verify(token))).reason).toBe('claims');
  });

  it.each([
    ['sid is missing', { sid: undefined }],
    ['sub is missing', { sub: undefined }],
    ['jti is missing', { jti: undefined }],
    ['iat is missing', { iat: undefined }],
    ['exp is missing', { exp: undefined }],
    ['amr is missing', { amr: undefined }],
    ['amr names an unknown method', { amr: ['pwd', 'sms'] }],
    ['amr is empty', { amr: [] }],
    ['sid is not a string', { sid: 42 }],
    ['sub is empty', { sub: '' }],
    ['nbf is in the future', { nbf: Math.floor(Date.parse('2030-01-01T00:00:00Z') / 1000) + 60 }],
  ])('rejects with reason claims when %s', async (_, overrides) => {
    const { accessTokens, clock, entries } = await setUp();
    const claims = JSON.parse(JSON.stringify(buildClaims(clock.now(), overrides))) as JWTPayload;
    const token = await signRaw(
      privateKeyOf(entries[0] ?? ''),
      { alg: 'EdDSA', typ: 'at+jwt', kid: 'k1' },
      claims,
    );
    expect((await catchAccessTokenError(() => accessTokens.verify(token))).reason).toBe('claims');
  });

  it.each([
    ['empty', ''],
    ['not a JWT', 'not-a-token'],
    ['two segments', 'a.b'],
    ['a header that is not JSON', `${base64url.encode('{')}.${encodeJson({})}.c2ln`],
    ['far too long', `${'a'.repeat(5000)}.b.c`],
  ])('rejects with reason malformed when the token is %s', async (_, token) => {
    const { accessTokens } = await setUp();
    expect((await catchAccessTokenError(() => accessTokens.verify(token))).reason).toBe('malformed');
  });

  it('renders a 401 problem with code auth.invalid_token, a Bearer challenge and no reason', async () => {
    const { accessTokens } = await setUp();
    const error = await catchAccessTokenError(() => accessTokens.verify('not-a-token'));
    expect(error.kind).toBe('unauthenticated');
    expect(error.code).toBe('auth.invalid_token');
    expect(error.headers).toEqual({ 'www-authenticate': 'Bearer error="invalid_token"' });
    const problem = toProblem(error, { instance: '/me' });
    expect(problem).toMatchObject({ status: 401, code: 'auth.invalid_token' });
    expect(JSON.stringify(problem)).not.toContain('malformed');
  });

  it('does not put the token into the error', async () => {
    const { accessTokens } = await setUp();
    const { token } = await accessTokens.issue(buildIssueInput());
    const forged = flipSignatureBit(token);
    const error = await catchAccessTokenError(() => accessTokens.verify(forged));
    const signature = forged.split('.')[2] ?? '';
    expect(`${error.message}${JSON.stringify(error)}${String(error.stack)}`).not.toContain(signature);
    expect(error.cause).toBeUndefined();
  });
});

describe('key rotation', () => {
  it('accepts a token signed by a published, not yet active key', async () => {
    const keyA = generateSigningKeyEntry('a');
    const keyB = generateSigningKeyEntry('b');
    const { accessTokens: signedByB } = await setUp({ entries: [keyB] });
    const { accessTokens: verifier, keys } = await setUp({ entries: [keyA, keyB] });
    expect(keys.activeKid).toBe('a');
    const { token } = await signedByB.issue(buildIssueInput());
    await expect(verifier.verify(token)).resolves.toMatchObject({ sessionId: 'session-1' });
  });

  it('accepts a token signed by the old key after rotation and refuses it once the old key is removed', async () => {
    const keyA = generateSigningKeyEntry('a');
    const keyB = generateSigningKeyEntry('b');
    const { accessTokens: beforeRotation } = await setUp({ entries: [keyA, keyB] });
    const { token } = await beforeRotation.issue(buildIssueInput());

    const { accessTokens: afterRotation } = await setUp({ entries: [keyB, keyA] });
    await expect(afterRotation.verify(token)).resolves.toMatchObject({ sessionId: 'session-1' });
    const { token: newToken } = await afterRotation.issue(buildIssueInput());
    expect(decodeProtectedHeader(newToken).kid).toBe('b');

    const { accessTokens: afterRetirement } = await setUp({ entries: [keyB] });
    expect((await catchAccessTokenError(() => afterRetirement.verify(token))).reason).toBe('unknown_kid');
    await expect(afterRetirement.verify(newToken)).resolves.toMatchObject({ sessionId: 'session-1' });
  });
});

describe('verified-token cache', () => {
  it('serves a second verification of the same token without a key lookup', async () => {
    const { counted, counter } = countingLookups(await parseSigningKeys(generateSigningKeyEntry('k1')));
    const { accessTokens } = await setUp({ keys: counted });
    const { token } = await accessTokens.issue(buildIssueInput());
    const first = await accessTokens.verify(token);
    expect(counter.lookups).toBe(1);
    await expect(accessTokens.verify(token)).resolves.toEqual(first);
    expect(counter.lookups).toBe(1);
  });

  it('verifies every time when the cache size is 0', async () => {
    const { counted, counter } = countingLookups(await parseSigningKeys(generateSigningKeyEntry('k1')));
    const { accessTokens } = await setUp({ keys: counted, cacheSize: 0 });
    const { token } = await accessTokens.issue(buildIssueInput());
    await accessTokens.verify(token);
    await accessTokens.verify(token);
    expect(counter.lookups).toBe(2);
  });

  it('evicts the least recently used token when full', async () => {
    const { counted, counter } = countingLookups(await parseSigningKeys(generateSigningKeyEntry('k1')));
    const { accessTokens } = await setUp({ keys: counted, cacheSize: 1 });
    const first = await accessTokens.issue(buildIssueInput());
    const second = await accessTokens.issue(buildIssueInput());
    await accessTokens.verify(first.token);
    await accessTokens.verify(second.token);
    await accessTokens.verify(first.token);
    expect(counter.lookups).toBe(3);
  });

  it('rejects with reason expired a token it has cached once the clock passes exp plus the tolerance', async () => {
    const { accessTokens, clock } = await setUp();
    const { token } = await accessTokens.issue(buildIssueInput());
    await accessTokens.verify(token);
    clock.advanceSeconds(TTL_SECONDS - 1);
    await expect(accessTokens.verify(token)).resolves.toMatchObject({ subject: 'user-1' });
    clock.advanceSeconds(1 + ACCESS_TOKEN_CLOCK_TOLERANCE_SECONDS);
    expect((await catchAccessTokenError(() => accessTokens.verify(token))).reason).toBe('expired');
  });

  it('does not serve a cached token at or after exp, leaving the tolerance window to full verification', async () => {
    const { counted, counter } = countingLookups(await parseSigningKeys(generateSigningKeyEntry('k1')));
    const { accessTokens, clock } = await setUp({ keys: counted });
    const { token } = await accessTokens.issue(buildIssueInput());
    await accessTokens.verify(token);
    clock.advanceSeconds(TTL_SECONDS);
    await accessTokens.verify(token);
    await accessTokens.verify(token);
    // Both verifications inside the tolerance window went to the key set again.
    expect(counter.lookups).toBe(3);
  });

  it('does not cache a failed verification: a token refused as not yet valid passes once its nbf arrives', async () => {
    const { accessTokens, clock, entries } = await setUp();
    const nbf = Math.floor(clock.now().getTime() / 1000) + 60;
    const token = await signRaw(
      privateKeyOf(entries[0] ?? ''),
      { alg: 'EdDSA', typ: 'at+jwt', kid: 'k1' },
      buildClaims(clock.now(), { nbf }),
    );
    expect((await catchAccessTokenError(() => accessTokens.verify(token))).reason).toBe('claims');
    clock.advanceSeconds(60);
    await expect(accessTokens.verify(token)).resolves.toMatchObject({ subject: 'user-1' });
  });

  it('rejects a tampered copy of a cached token', async () => {
    const { accessTokens } = await setUp();
    const { token } = await accessTokens.issue(buildIssueInput());
    await accessTokens.verify(token);
    expect((await catchAccessTokenError(() => accessTokens.verify(flipSignatureBit(token)))).reason).toBe(
      'bad_signature',
    );
  });

  it('returns fresh claims from the cache, so a caller mutating them does not affect the next request', async () => {
    const { accessTokens } = await setUp();
    const { token, expiresAt } = await accessTokens.issue(buildIssueInput());
    const first = await accessTokens.verify(token);
    first.expiresAt.setTime(0);
    expect(() => (first.authenticationMethods as string[]).push('otp')).toThrow();
    const second = await accessTokens.verify(token);
    expect(second.expiresAt).toEqual(expiresAt);
    expect(second.authenticationMethods).toEqual(['pwd']);
  });
});
