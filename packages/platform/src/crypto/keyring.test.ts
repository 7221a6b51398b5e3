import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { CryptoError } from './crypto.errors.ts';
import { catchCryptoError } from './crypto.test-support.ts';
import { createKeyring, generateEncryptionKey, keyObjectFor, parseKeyring } from './keyring.ts';

/** Everything an error could leak through: message, JSON and inspect output. */
function renderedError(error: CryptoError): string {
  return `${error.message}\n${JSON.stringify(error)}\n${inspect(error, { depth: 5 })}`;
}

function urlSafe(base64: string): string {
  return base64.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

describe('parseKeyring', () => {
  it('makes the first entry active and keeps every id, in order, when given several keys', () => {
    const keyring = parseKeyring(`k2:${generateEncryptionKey()}, k1:${generateEncryptionKey()}`);
    expect(keyring.activeKeyId).toBe('k2');
    expect(keyring.keyIds).toEqual(['k2', 'k1']);
    expect(keyring.hasKey('k1')).toBe(true);
    expect(keyring.hasKey('k3')).toBe(false);
  });

  it('accepts unpadded URL-safe base64 keys', () => {
    const keyring = parseKeyring(`k_1-a:${urlSafe(generateEncryptionKey())}`);
    expect(keyring.keyIds).toEqual(['k_1-a']);
  });

  it('holds keys that encrypt identically whatever the alphabet they were written in', () => {
    const key = generateEncryptionKey();
    const standard = keyObjectFor(parseKeyring(`k1:${key}`), 'k1');
    const safe = keyObjectFor(parseKeyring(`k1:${urlSafe(key)}`), 'k1');
    expect(standard.equals(safe)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['only separators', ' , ,'],
  ])('rejects with crypto.invalid_keyring when the value is %s', (_, value) => {
    expect(catchCryptoError(() => parseKeyring(value)).code).toBe('crypto.invalid_keyring');
  });

  it('rejects an entry without a colon by position, without echoing it', () => {
    const key = generateEncryptionKey();
    const error = catchCryptoError(() => parseKeyring(`k1:${generateEncryptionKey()},${key}`));
    expect(error.code).toBe('crypto.invalid_keyring');
    expect(error.extensions).toEqual({ entry: 2 });
    expect(renderedError(error)).not.toContain(key);
  });

  it('does not echo the id when it is invalid, because a swapped entry puts the key there', () => {
    const key = generateEncryptionKey();
    const error = catchCryptoError(() => parseKeyring(`${key}:k1`));
    expect(error.code).toBe('crypto.invalid_keyring');
    expect(error.extensions).toEqual({ entry: 1 });
    expect(renderedError(error)).not.toContain(key);
    expect(renderedError(error)).not.toContain(key.slice(0, 12));
  });

  it.each([
    ['upper case', 'K1'],
    ['a dot, which would break the ciphertext format', 'k.1'],
    ['too long', 'k'.repeat(33)],
    ['empty', ''],
  ])('rejects with crypto.invalid_keyring when an id is %s', (_, id) => {
    const error = catchCryptoError(() => parseKeyring(`${id}:${generateEncryptionKey()}`));
    expect(error.code).toBe('crypto.invalid_keyring');
  });

  it('names the repeated id and no key when an id appears twice', () => {
    const first = generateEncryptionKey();
    const second = generateEncryptionKey();
    const error = catchCryptoError(() => parseKeyring(`k1:${first},k1:${second}`));
    expect(error.code).toBe('crypto.invalid_keyring');
    expect(error.extensions).toEqual({ keyId: 'k1' });
    expect(error.message).toContain('k1');
    expect(renderedError(error)).not.toContain(first);
    expect(renderedError(error)).not.toContain(second);
  });

  it.each([
    ['16 bytes', randomBytes(16).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['not base64', `${generateEncryptionKey().slice(0, 40)}!!!=`],
    ['hex instead of base64', randomBytes(32).toString('hex')],
  ])('names the key id and not its material when a key is %s', (_, material) => {
    const error = catchCryptoError(() => parseKeyring(`k2:${generateEncryptionKey()},k1:${material}`));
    expect(error.code).toBe('crypto.invalid_keyring');
    expect(error.extensions).toEqual({ keyId: 'k1' });
    expect(error.message).toContain('k1');
    expect(renderedError(error)).not.toContain(material);
  });

  it('rejects the same key material under two ids', () => {
    const key = generateEncryptionKey();
    const error = catchCryptoError(() => parseKeyring(`k2:${key},k1:${key}`));
    expect(error.code).toBe('crypto.invalid_keyring');
    expect(renderedError(error)).not.toContain(key);
  });
});

describe('createKeyring', () => {
  it('copies the key bytes, so zeroing the caller buffer does not change the key', () => {
    const bytes = randomBytes(32);
    const original = Buffer.from(bytes);
    const keyring = createKeyring([{ id: 'k1', key: bytes }]);
    bytes.fill(0);
    const expected = createKeyring([{ id: 'k1', key: original }]);
    expect(keyObjectFor(keyring, 'k1').equals(keyObjectFor(expected, 'k1'))).toBe(true);
  });

  it('rejects with crypto.invalid_keyring when there is no key', () => {
    expect(catchCryptoError(() => createKeyring([])).code).toBe('crypto.invalid_keyring');
  });

  it('rejects a key of the wrong length naming its id', () => {
    const error = catchCryptoError(() => createKeyring([{ id: 'short', key: randomBytes(31) }]));
    expect(error.code).toBe('crypto.invalid_keyring');
    expect(error.extensions).toEqual({ keyId: 'short' });
  });
});

describe('keyring rendering', () => {
  const keys = [generateEncryptionKey(), generateEncryptionKey()];
  const keyring = parseKeyring(`k2:${keys[0]},k1:${keys[1]}`);
  const keyBytes = keys.map((key) => Buffer.from(key, 'base64'));
  const forms = keys.flatMap((key, index) => [
    key,
    urlSafe(key),
    keyBytes[index]?.toString('hex') ?? '',
    key.slice(0, 16),
  ]);

  it.each([
    ['JSON.stringify', () => JSON.stringify(keyring)],
    ['JSON.stringify of an object holding it', () => JSON.stringify({ config: { keyring } })],
    ['util.inspect', () => inspect(keyring, { depth: 10, showHidden: true })],
    ['util.inspect of an object holding it', () => inspect({ keyring }, { depth: 10, showHidden: true })],
    ['String()', () => String(keyring)],
    ['template literal', () => `${keyring}`],
    ['a spread copy', () => inspect({ ...keyring }, { depth: 10, showHidden: true })],
    ['structuredClone-able own values', () => JSON.stringify(Object.values(keyring))],
  ])('shows ids and no key bytes through %s', (_, render) => {
    const output = render();
    expect(output).toContain('k2');
    for (const form of forms) expect(output).not.toContain(form);
  });

  it('describes itself as the active id and the key ids in JSON', () => {
    expect(JSON.parse(JSON.stringify(keyring))).toEqual({ activeKeyId: 'k2', keyIds: ['k2', 'k1'] });
  });

  it('cannot be changed after creation', () => {
    expect(Object.isFrozen(keyring)).toBe(true);
    expect(Object.isFrozen(keyring.keyIds)).toBe(true);
  });
});

describe('keyObjectFor', () => {
  it('rejects with crypto.unknown_key naming the id when the keyring lacks it', () => {
    const keyring = parseKeyring(`k1:${generateEncryptionKey()}`);
    const error = catchCryptoError(() => keyObjectFor(keyring, 'k9'));
    expect(error.code).toBe('crypto.unknown_key');
    expect(error.extensions).toEqual({ keyId: 'k9' });
  });

  it('rejects an object that only looks like a keyring', () => {
    const keyring = parseKeyring(`k1:${generateEncryptionKey()}`);
    const lookalike = { ...keyring };
    expect(catchCryptoError(() => keyObjectFor(lookalike, 'k1')).code).toBe('crypto.invalid_keyring');
  });
});
