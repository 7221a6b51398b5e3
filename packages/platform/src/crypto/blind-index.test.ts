import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createBlindIndex, normaliseEmail } from './blind-index.ts';
import { catchCryptoError } from './crypto.test-support.ts';
import { generateEncryptionKey } from './keyring.ts';

const indexKey = generateEncryptionKey();
const identity = (value: string) => value;

describe('createBlindIndex', () => {
  const emailIndex = createBlindIndex({
    key: indexKey,
    context: 'user_metadata.users.email',
    normalise: normaliseEmail,
  });

  it('gives the same 64-character hex token for the same value every time', () => {
    const token = emailIndex.compute('ada@example.com');
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(emailIndex.compute('ada@example.com')).toBe(token);
  });

  it('gives the same token across instances built from the same key and context', () => {
    const again = createBlindIndex({
      key: indexKey,
      context: 'user_metadata.users.email',
      normalise: normaliseEmail,
    });
    expect(again.compute('ada@example.com')).toBe(emailIndex.compute('ada@example.com'));
  });

  it('gives equal tokens for values the normaliser makes equal', () => {
    expect(emailIndex.compute('  Ada@Example.COM ')).toBe(emailIndex.compute('ada@example.com'));
    // "é" precomposed and as e + combining accent.
    expect(emailIndex.compute('ren\u00e9@example.com')).toBe(emailIndex.compute('rene\u0301@example.com'));
  });

  it('gives different tokens for different values', () => {
    expect(emailIndex.compute('ada@example.com')).not.toBe(emailIndex.compute('eve@example.com'));
  });

  it('gives different tokens for the same value in two contexts', () => {
    const phoneIndex = createBlindIndex({
      key: indexKey,
      context: 'user_metadata.users.phone',
      normalise: identity,
    });
    const otherPhoneIndex = createBlindIndex({
      key: indexKey,
      context: 'billing.accounts.phone',
      normalise: identity,
    });
    expect(phoneIndex.compute('+442079460000')).not.toBe(otherPhoneIndex.compute('+442079460000'));
  });

  it('gives different tokens for the same value and context under another key', () => {
    const other = createBlindIndex({
      key: generateEncryptionKey(),
      context: 'user_metadata.users.email',
      normalise: normaliseEmail,
    });
    expect(other.compute('ada@example.com')).not.toBe(emailIndex.compute('ada@example.com'));
  });

  it('writes unpadded base64url when asked', () => {
    const base64urlIndex = createBlindIndex({
      key: indexKey,
      context: 'user_metadata.users.email',
      normalise: normaliseEmail,
      encoding: 'base64url',
    });
    const token = base64urlIndex.compute('ada@example.com');
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url').toString('hex')).toBe(emailIndex.compute('ada@example.com'));
  });

  it('does not contain the value or the key, and shows only its context when logged', () => {
    const token = emailIndex.compute('ada@example.com');
    expect(token).not.toContain(Buffer.from('ada').toString('hex'));
    const rendered = `${JSON.stringify(emailIndex)}\n${inspect(emailIndex, { depth: 10, showHidden: true })}`;
    expect(rendered).toContain('user_metadata.users.email');
    expect(rendered).not.toContain(indexKey);
    expect(rendered).not.toContain(Buffer.from(indexKey, 'base64').toString('hex'));
  });

  it.each([
    ['16 bytes', randomBytes(16).toString('base64')],
    ['empty', ''],
    ['hex', randomBytes(32).toString('hex')],
  ])('rejects with crypto.invalid_key and no key material when the key is %s', (_, key) => {
    const error = catchCryptoError(() =>
      createBlindIndex({ key, context: 'user_metadata.users.email', normalise: identity }),
    );
    expect(error.code).toBe('crypto.invalid_key');
    if (key !== '') expect(`${error.message}${JSON.stringify(error)}`).not.toContain(key);
  });

  it.each([
    ['empty', ''],
    ['upper case', 'Users.Email'],
    ['spaces', 'users email'],
  ])('rejects with crypto.invalid_input when the context is %s', (_, context) => {
    const error = catchCryptoError(() => createBlindIndex({ key: indexKey, context, normalise: identity }));
    expect(error.code).toBe('crypto.invalid_input');
  });

  it('rejects with crypto.invalid_input when the normalised value holds a lone surrogate', () => {
    expect(catchCryptoError(() => emailIndex.compute('ada\uD800@example.com')).code).toBe(
      'crypto.invalid_input',
    );
  });
});

describe('normaliseEmail', () => {
  it('trims, lowercases and composes Unicode', () => {
    expect(normaliseEmail('  Ren\u0065\u0301@Example.COM\n')).toBe('ren\u00e9@example.com');
  });
});
