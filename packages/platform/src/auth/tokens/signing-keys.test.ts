import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  generateSigningKeyEntry,
  loadOrCreateSigningKeys,
  parseSigningKeys,
  SIGNING_KEYS_FILE_NAME,
} from './signing-keys.ts';
import type { TokensError } from './tokens.errors.ts';
import { catchTokensError, keyMaterialOf, privateKeyOf } from './tokens.test-support.ts';

/** Everything an error could leak through: message, JSON and inspect output. */
function renderedError(error: TokensError): string {
  return `${error.message}\n${JSON.stringify(error)}\n${inspect(error, { depth: 5 })}`;
}

function urlSafe(base64: string): string {
  return base64.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

describe('parseSigningKeys', () => {
  it('makes the first entry active and keeps every kid, in order, when given several keys', async () => {
    const keys = await parseSigningKeys(
      `k2:${keyMaterialOf(generateSigningKeyEntry('x'))}, k1:${keyMaterialOf(generateSigningKeyEntry('x'))}`,
    );
    expect(keys.activeKid).toBe('k2');
    expect(keys.kids).toEqual(['k2', 'k1']);
  });

  it('returns the public key of each entry by kid and undefined for an unknown kid', async () => {
    const first = generateSigningKeyEntry('k2');
    const second = generateSigningKeyEntry('k1');
    const keys = await parseSigningKeys(`${first},${second}`);
    expect(keys.publicKeyFor('k2')?.equals(createPublicKey(privateKeyOf(first)))).toBe(true);
    expect(keys.publicKeyFor('k1')?.equals(createPublicKey(privateKeyOf(second)))).toBe(true);
    expect(keys.publicKeyFor('k1')?.type).toBe('public');
    expect(keys.publicKeyFor('k3')).toBeUndefined();
    expect(keys.publicKeyFor('__proto__')).toBeUndefined();
  });

  it('accepts unpadded URL-safe base64 key material', async () => {
    const entry = generateSigningKeyEntry('k1');
    const keys = await parseSigningKeys(`k1:${urlSafe(keyMaterialOf(entry))}`);
    expect(keys.publicKeyFor('k1')?.equals(createPublicKey(privateKeyOf(entry)))).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['only separators', ' , ,'],
  ])('rejects with auth.invalid_signing_keys when the value is %s', async (_, value) => {
    expect((await catchTokensError(() => parseSigningKeys(value))).code).toBe('auth.invalid_signing_keys');
  });

  it('rejects an entry without a colon by position, without echoing it', async () => {
    const material = keyMaterialOf(generateSigningKeyEntry('x'));
    const error = await catchTokensError(() =>
      parseSigningKeys(`${generateSigningKeyEntry('k1')},${material}`),
    );
    expect(error.code).toBe('auth.invalid_signing_keys');
    expect(error.extensions).toEqual({ entry: 2 });
    expect(renderedError(error)).not.toContain(material);
  });

  it('does not echo the kid when it is invalid, because a swapped entry puts the key there', async () => {
    const material = keyMaterialOf(generateSigningKeyEntry('x'));
    const error = await catchTokensError(() => parseSigningKeys(`${material}:k1`));
    expect(error.code).toBe('auth.invalid_signing_keys');
    expect(error.extensions).toEqual({ entry: 1 });
    expect(renderedError(error)).not.toContain(material.slice(0, 16));
  });

  it.each([
    ['upper case', 'K1'],
    ['a dot', 'k.1'],
    ['too long', 'k'.repeat(33)],
    ['empty', ''],
  ])('rejects with auth.invalid_signing_keys when a kid is %s', async (_, kid) => {
    const error = await catchTokensError(() =>
      parseSigningKeys(`${kid}:${keyMaterialOf(generateSigningKeyEntry('x'))}`),
    );
    expect(error.code).toBe('auth.invalid_signing_keys');
  });

  it('names the repeated kid and no key material when a kid appears twice', async () => {
    const first = generateSigningKeyEntry('k1');
    const second = generateSigningKeyEntry('k1');
    const error = await catchTokensError(() => parseSigningKeys(`${first},${second}`));
    expect(error.code).toBe('auth.invalid_signing_keys');
    expect(error.extensions).toEqual({ kid: 'k1' });
    expect(renderedError(error)).not.toContain(keyMaterialOf(first));
    expect(renderedError(error)).not.toContain(keyMaterialOf(second));
  });

  it('rejects the same key under two kids', async () => {
    const material = keyMaterialOf(generateSigningKeyEntry('x'));
    const error = await catchTokensError(() => parseSigningKeys(`k2:${material},k1:${material}`));
    expect(error.code).toBe('auth.invalid_signing_keys');
    expect(error.extensions).toEqual({ kid: 'k1' });
    expect(renderedError(error)).not.toContain(material);
  });

  it.each([
    ['not base64', () => 'not base64!'],
    ['base64 of something other than DER', () => Buffer.from('a'.repeat(48)).toString('base64')],
    ['a truncated key', () => keyMaterialOf(generateSigningKeyEntry('x')).slice(0, 40)],
    [
      'a P-256 key, which is PKCS#8 but not Ed25519',
      () =>
        generateKeyPairSync('ec', { namedCurve: 'P-256' })
          .privateKey.export({ format: 'der', type: 'pkcs8' })
          .toString('base64'),
    ],
    [
      'an Ed25519 public key instead of the private key',
      () =>
        generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    ],
  ])('names the kid and no key material when the key is %s', async (_, material) => {
    const value = material();
    const error = await catchTokensError(() =>
      parseSigningKeys(`${generateSigningKeyEntry('k1')},k7:${value}`),
    );
    expect(error.code).toBe('auth.invalid_signing_keys');
    expect(error.extensions).toEqual({ kid: 'k7' });
    expect(error.message).toContain('k7');
    expect(renderedError(error)).not.toContain(value);
    expect(error.cause).toBeUndefined();
  });
});

describe('a signing key set', () => {
  it('publishes one JWKS entry per key with only public members', async () => {
    const first = generateSigningKeyEntry('k2');
    const second = generateSigningKeyEntry('k1');
    const jwks = (await parseSigningKeys(`${first},${second}`)).jwks();
    expect(jwks.keys).toHaveLength(2);
    for (const [index, entry] of [first, second].entries()) {
      const expectedX = createPublicKey(privateKeyOf(entry)).export({ format: 'jwk' }).x;
      expect(jwks.keys[index]).toEqual({
        kty: 'OKP',
        crv: 'Ed25519',
        x: expectedX,
        kid: entry.slice(0, 2),
        alg: 'EdDSA',
        use: 'sig',
      });
      expect(jwks.keys[index]).not.toHaveProperty('d');
    }
  });

  it('returns a fresh JWKS document on every call, so a caller cannot alter the published keys', async () => {
    const keys = await parseSigningKeys(generateSigningKeyEntry('k1'));
    const first = keys.jwks();
    const firstKey = first.keys[0];
    if (firstKey === undefined) throw new Error('expected a key');
    firstKey.x = 'tampered';
    first.keys.push({ ...firstKey, kid: 'k9' });
    expect(keys.jwks().keys).toHaveLength(1);
    expect(keys.jwks().keys[0]?.x).not.toBe('tampered');
  });

  it('does not reveal private keys through inspect, JSON, string conversion, spreading or cloning', async () => {
    const entry = generateSigningKeyEntry('k1');
    const keys = await parseSigningKeys(entry);
    const privateJwk = privateKeyOf(entry).export({ format: 'jwk' });
    const renderings = [
      inspect(keys, { showHidden: true, depth: 10 }),
      JSON.stringify(keys),
      String(keys),
      inspect({ ...keys }, { showHidden: true, depth: 10 }),
      JSON.stringify({ ...keys }),
      JSON.stringify(Object.getOwnPropertyDescriptors(keys)),
    ].join('\n');
    expect(renderings).toContain('k1');
    expect(renderings).not.toContain(keyMaterialOf(entry));
    expect(renderings).not.toContain(privateJwk.d);
    expect(JSON.parse(JSON.stringify(keys))).toEqual({ activeKid: 'k1', kids: ['k1'] });
  });

  it('signs with the active key under its kid, and the second key verifies nothing it signed', async () => {
    const active = generateSigningKeyEntry('k2');
    const keys = await parseSigningKeys(`${active},${generateSigningKeyEntry('k1')}`);
    const token = await keys.sign({ sub: 'user-1' }, { typ: 'at+jwt' });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', kid: 'k2', typ: 'at+jwt' });
    const { payload } = await jwtVerify(token, createPublicKey(privateKeyOf(active)));
    expect(payload.sub).toBe('user-1');
    const other = keys.publicKeyFor('k1');
    if (other === undefined) throw new Error('expected k1');
    await expect(jwtVerify(token, other)).rejects.toThrow();
  });
});

describe('generateSigningKeyEntry', () => {
  it('produces a different parseable Ed25519 entry each time', async () => {
    const first = generateSigningKeyEntry('k1');
    const second = generateSigningKeyEntry('k1');
    expect(first).toMatch(/^k1:[A-Za-z0-9+/]+={0,2}$/);
    expect(first).not.toBe(second);
    expect(privateKeyOf(first).asymmetricKeyType).toBe('ed25519');
    expect((await parseSigningKeys(first)).activeKid).toBe('k1');
  });

  it('rejects with auth.invalid_token_input when the kid is invalid', async () => {
    expect((await catchTokensError(() => generateSigningKeyEntry('Bad Kid'))).code).toBe(
      'auth.invalid_token_input',
    );
  });
});

describe('loadOrCreateSigningKeys', () => {
  let directory: string;

  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'keel-signing-keys-'));
  });

  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('creates the data directory and a 0600 key file with a dev kid when nothing is configured', async () => {
    const dataDirectory = join(directory, 'nested', 'data');
    const keys = await loadOrCreateSigningKeys({ dataDirectory, allowGenerate: true });
    expect(keys.activeKid).toMatch(/^dev-[0-9a-f]{8}$/);
    const path = join(dataDirectory, SIGNING_KEYS_FILE_NAME);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readFile(path, 'utf8')).trim()).toMatch(
      new RegExp(`^${keys.activeKid}:[A-Za-z0-9+/]+={0,2}$`),
    );
  });

  it('reuses the same key on the next start', async () => {
    const first = await loadOrCreateSigningKeys({ dataDirectory: directory, allowGenerate: true });
    const second = await loadOrCreateSigningKeys({ dataDirectory: directory, allowGenerate: true });
    expect(second.activeKid).toBe(first.activeKid);
    expect(second.jwks()).toEqual(first.jwks());
  });

  it('agrees on one key when several starts race to create it', async () => {
    const sets = await Promise.all(
      Array.from({ length: 8 }, () =>
        loadOrCreateSigningKeys({ dataDirectory: directory, allowGenerate: true }),
      ),
    );
    const published = new Set(sets.map((keys) => JSON.stringify(keys.jwks())));
    expect(published.size).toBe(1);
    const onDisk = await loadOrCreateSigningKeys({ dataDirectory: directory, allowGenerate: true });
    expect(JSON.stringify(onDisk.jwks())).toBe([...published][0]);
  });

  it('uses the configured keys and writes no file when keys are configured', async () => {
    const keys = await loadOrCreateSigningKeys({
      configured: generateSigningKeyEntry('prod1'),
      dataDirectory: directory,
      allowGenerate: true,
    });
    expect(keys.activeKid).toBe('prod1');
    await expect(stat(join(directory, SIGNING_KEYS_FILE_NAME))).rejects.toThrow();
  });

  it('rejects with auth.signing_keys_required and writes no file when nothing is configured and generating is not allowed', async () => {
    const error = await catchTokensError(() =>
      loadOrCreateSigningKeys({ dataDirectory: directory, allowGenerate: false }),
    );
    expect(error.code).toBe('auth.signing_keys_required');
    expect(error.kind).toBe('internal');
    await expect(stat(join(directory, SIGNING_KEYS_FILE_NAME))).rejects.toThrow();
  });

  it('rejects with auth.invalid_signing_keys naming the file when the key file is malformed', async () => {
    await mkdir(directory, { recursive: true });
    const path = join(directory, SIGNING_KEYS_FILE_NAME);
    await writeFile(path, 'dev-1:not-a-key\n', { mode: 0o600 });
    const error = await catchTokensError(() =>
      loadOrCreateSigningKeys({ dataDirectory: directory, allowGenerate: true }),
    );
    expect(error.code).toBe('auth.invalid_signing_keys');
    expect(error.extensions).toEqual({ kid: 'dev-1', file: path });
  });
});
