import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { CryptoError } from './crypto.errors.ts';
import { catchCryptoError } from './crypto.test-support.ts';
import { createFieldEncryption, FORMAT_VERSION } from './field-encryption.ts';
import { createKeyring, generateEncryptionKey, parseKeyring } from './keyring.ts';

const k1 = generateEncryptionKey();
const k2 = generateEncryptionKey();
const onlyK1 = createFieldEncryption(parseKeyring(`k1:${k1}`));
const k2ThenK1 = createFieldEncryption(parseKeyring(`k2:${k2},k1:${k1}`));
const aad = 'user_metadata.users:phone:8b0d4c1e-1d1f-4a43-9b7e-0f6f1f7e2c11';

/** Replaces one character in the middle of a segment, keeping it valid canonical base64url. */
function tamperSegment(ciphertext: string, index: number): string {
  const segments = ciphertext.split('.');
  const segment = segments[index] ?? '';
  const position = Math.floor(segment.length / 2);
  const replacement = segment[position] === 'A' ? 'B' : 'A';
  segments[index] = `${segment.slice(0, position)}${replacement}${segment.slice(position + 1)}`;
  return segments.join('.');
}

describe('createFieldEncryption', () => {
  it.each([
    ['ASCII', 'ada@example.com'],
    ['empty', ''],
    ['multi-byte Unicode', 'Zoë Ångström 🚀 東京'],
    ['long', 'x'.repeat(100_000)],
  ])('round-trips a %s value', (_, plaintext) => {
    const ciphertext = onlyK1.encrypt(plaintext, aad);
    expect(onlyK1.decrypt(ciphertext, aad)).toBe(plaintext);
  });

  it('writes the documented format: version, key id and four base64url segments', () => {
    const ciphertext = k2ThenK1.encrypt('secret', aad);
    expect(ciphertext).toMatch(
      /^kv1\.k2\.[A-Za-z0-9_-]{80}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{22}$/,
    );
    expect(FORMAT_VERSION).toBe('kv1');
  });

  it('never contains the plaintext and differs on every call for the same input', () => {
    const first = onlyK1.encrypt('ada@example.com', aad);
    const second = onlyK1.encrypt('ada@example.com', aad);
    expect(first).not.toBe(second);
    expect(first).not.toContain('ada');
    // Fresh data key and IVs per value: no segment but the header repeats.
    const [, , ...firstSegments] = first.split('.');
    const [, , ...secondSegments] = second.split('.');
    for (const [index, segment] of firstSegments.entries()) expect(segment).not.toBe(secondSegments[index]);
  });

  it('encrypts under the active key and decrypts values under any key of the keyring', () => {
    const underK1 = onlyK1.encrypt('old', aad);
    const underK2 = k2ThenK1.encrypt('new', aad);
    expect(k2ThenK1.keyIdOf(underK1)).toBe('k1');
    expect(k2ThenK1.keyIdOf(underK2)).toBe('k2');
    expect(k2ThenK1.decrypt(underK1, aad)).toBe('old');
    expect(k2ThenK1.decrypt(underK2, aad)).toBe('new');
    expect(k2ThenK1.activeKeyId).toBe('k2');
  });

  it('reports needsRotation only for values under a key other than the active one', () => {
    expect(k2ThenK1.needsRotation(onlyK1.encrypt('old', aad))).toBe(true);
    expect(k2ThenK1.needsRotation(k2ThenK1.encrypt('new', aad))).toBe(false);
  });

  describe('associated data', () => {
    it.each([
      ['another row', 'user_metadata.users:phone:00000000-0000-0000-0000-000000000000'],
      ['another column', 'user_metadata.users:email:8b0d4c1e-1d1f-4a43-9b7e-0f6f1f7e2c11'],
      ['a prefix of the right one', aad.slice(0, -1)],
    ])('rejects with crypto.decrypt_failed when decrypted as %s', (_, otherAad) => {
      const ciphertext = onlyK1.encrypt('secret', aad);
      expect(catchCryptoError(() => onlyK1.decrypt(ciphertext, otherAad)).code).toBe('crypto.decrypt_failed');
    });

    it('rejects with crypto.invalid_input when empty, so no value is left unbound to its row', () => {
      expect(catchCryptoError(() => onlyK1.encrypt('secret', '')).code).toBe('crypto.invalid_input');
      const ciphertext = onlyK1.encrypt('secret', aad);
      expect(catchCryptoError(() => onlyK1.decrypt(ciphertext, '')).code).toBe('crypto.invalid_input');
    });

    it('rejects with crypto.invalid_input when plaintext or AAD holds a lone surrogate', () => {
      expect(catchCryptoError(() => onlyK1.encrypt('bad \uD800', aad)).code).toBe('crypto.invalid_input');
      expect(catchCryptoError(() => onlyK1.encrypt('ok', `${aad}\uDC00`)).code).toBe('crypto.invalid_input');
    });
  });

  describe('tampering', () => {
    const ciphertext = k2ThenK1.encrypt('ada@example.com', aad);

    it.each([
      [2, 'wrapped data key'],
      [3, 'iv'],
      [4, 'ciphertext'],
      [5, 'tag'],
    ])('rejects with crypto.decrypt_failed when segment %i (%s) is changed', (index) => {
      const tampered = tamperSegment(ciphertext, index);
      expect(tampered).not.toBe(ciphertext);
      const error = catchCryptoError(() => k2ThenK1.decrypt(tampered, aad));
      expect(error.code).toBe('crypto.decrypt_failed');
      expect(renderedError(error)).not.toContain('ada');
    });

    it('rejects with crypto.decrypt_failed when the key id is switched to another key of the keyring', () => {
      const relabelled = ciphertext.replace(/^kv1\.k2\./, 'kv1.k1.');
      expect(catchCryptoError(() => k2ThenK1.decrypt(relabelled, aad)).code).toBe('crypto.decrypt_failed');
    });

    it('rejects with crypto.unknown_key naming the id when the key id is switched to an unknown one', () => {
      const relabelled = ciphertext.replace(/^kv1\.k2\./, 'kv1.k9.');
      const error = catchCryptoError(() => k2ThenK1.decrypt(relabelled, aad));
      expect(error.code).toBe('crypto.unknown_key');
      expect(error.extensions).toEqual({ keyId: 'k9' });
      expect(error.message).toContain('k9');
    });

    it('rejects with crypto.malformed_ciphertext when the version is changed', () => {
      const other = ciphertext.replace(/^kv1\./, 'kv2.');
      expect(catchCryptoError(() => k2ThenK1.decrypt(other, aad)).code).toBe('crypto.malformed_ciphertext');
    });

    it('rejects with crypto.decrypt_failed when a data segment is moved from another value', () => {
      const other = k2ThenK1.encrypt('eve@example.com', aad).split('.');
      const spliced = ciphertext.split('.');
      spliced[4] = other[4] ?? '';
      spliced[5] = other[5] ?? '';
      expect(catchCryptoError(() => k2ThenK1.decrypt(spliced.join('.'), aad)).code).toBe(
        'crypto.decrypt_failed',
      );
    });

    it.each([
      ['a segment is missing', (value: string) => value.split('.').slice(0, 5).join('.')],
      ['a segment is added', (value: string) => `${value}.AAAA`],
      ['a segment holds non-base64url characters', (value: string) => value.replace(/\.([^.]+)$/, '.$1+')],
      ['a segment is not canonical base64url', (value: string) => withNonCanonicalTag(value)],
      ['the iv is truncated', (value: string) => truncateSegment(value, 3)],
      ['the wrapped key is truncated', (value: string) => truncateSegment(value, 2)],
      ['the key id is not a valid id', (value: string) => value.replace(/^kv1\.k2\./, 'kv1.K2.')],
      ['it is plaintext', () => 'ada@example.com'],
      ['it is empty', () => ''],
    ])('rejects with crypto.malformed_ciphertext when %s', (_, mangle) => {
      const mangled = mangle(ciphertext);
      expect(catchCryptoError(() => k2ThenK1.decrypt(mangled, aad)).code).toBe('crypto.malformed_ciphertext');
      expect(catchCryptoError(() => k2ThenK1.keyIdOf(mangled)).code).toBe('crypto.malformed_ciphertext');
    });
  });

  it('rejects with crypto.unknown_key when the value was written under a key since removed', () => {
    const underK2 = k2ThenK1.encrypt('secret', aad);
    const error = catchCryptoError(() => onlyK1.decrypt(underK2, aad));
    expect(error.code).toBe('crypto.unknown_key');
    expect(error.extensions).toEqual({ keyId: 'k2' });
  });

  it('rejects a value encrypted under a different key with the same id with crypto.decrypt_failed', () => {
    const impostor = createFieldEncryption(parseKeyring(`k1:${generateEncryptionKey()}`));
    const ciphertext = impostor.encrypt('secret', aad);
    expect(catchCryptoError(() => onlyK1.decrypt(ciphertext, aad)).code).toBe('crypto.decrypt_failed');
  });

  it('rejects a keyring lookalike at construction', () => {
    const keyring = parseKeyring(`k1:${k1}`);
    expect(catchCryptoError(() => createFieldEncryption({ ...keyring })).code).toBe('crypto.invalid_keyring');
  });

  it('puts no plaintext and no key material in error messages', () => {
    const ciphertext = onlyK1.encrypt('ada@example.com', aad);
    const errors = [
      catchCryptoError(() => onlyK1.decrypt(ciphertext, 'other')),
      catchCryptoError(() => onlyK1.decrypt(tamperSegment(ciphertext, 4), aad)),
      catchCryptoError(() => k2ThenK1.rewrap(ciphertext, 'other')),
    ];
    for (const error of errors) {
      const rendered = renderedError(error);
      expect(rendered).not.toContain('ada');
      expect(rendered).not.toContain(k1);
      expect(rendered).not.toContain(ciphertext.split('.')[2]);
    }
  });
});

describe('rewrap', () => {
  it('moves a value to the active key by replacing only the wrapped data key', () => {
    const underK1 = onlyK1.encrypt('ada@example.com', aad);
    const rewrapped = k2ThenK1.rewrap(underK1, aad);
    expect(k2ThenK1.keyIdOf(rewrapped)).toBe('k2');
    expect(k2ThenK1.decrypt(rewrapped, aad)).toBe('ada@example.com');
    const before = underK1.split('.');
    const after = rewrapped.split('.');
    expect(after[2]).not.toBe(before[2]);
    expect(after.slice(3)).toEqual(before.slice(3));
  });

  it('leaves a value already under the active key unchanged', () => {
    const underK2 = k2ThenK1.encrypt('ada@example.com', aad);
    expect(k2ThenK1.rewrap(underK2, aad)).toBe(underK2);
  });

  it('gives a value the new-key-only keyring can read once the old key is retired', () => {
    const onlyK2 = createFieldEncryption(parseKeyring(`k2:${k2}`));
    const rewrapped = k2ThenK1.rewrap(onlyK1.encrypt('ada@example.com', aad), aad);
    expect(onlyK2.decrypt(rewrapped, aad)).toBe('ada@example.com');
  });

  it('rejects with crypto.decrypt_failed rather than re-wrap a value under the wrong AAD', () => {
    const underK1 = onlyK1.encrypt('ada@example.com', aad);
    expect(catchCryptoError(() => k2ThenK1.rewrap(underK1, 'another:row')).code).toBe(
      'crypto.decrypt_failed',
    );
  });

  it('rejects with crypto.decrypt_failed rather than re-wrap altered data', () => {
    const tampered = tamperSegment(onlyK1.encrypt('ada@example.com', aad), 4);
    expect(catchCryptoError(() => k2ThenK1.rewrap(tampered, aad)).code).toBe('crypto.decrypt_failed');
  });
});

describe('createKeyring with createFieldEncryption', () => {
  it('decrypts values written through a parsed keyring holding the same bytes', () => {
    const bytes = Buffer.from(k1, 'base64');
    const fromBytes = createFieldEncryption(createKeyring([{ id: 'k1', key: bytes }]));
    expect(fromBytes.decrypt(onlyK1.encrypt('same key', aad), aad)).toBe('same key');
  });
});

function renderedError(error: CryptoError): string {
  return `${error.message}\n${JSON.stringify(error)}\n${inspect(error, { depth: 5 })}`;
}

function truncateSegment(value: string, index: number): string {
  const segments = value.split('.');
  segments[index] = (segments[index] ?? '').slice(0, -4);
  return segments.join('.');
}

// The tag is 16 bytes: 22 characters whose last carries 2 bits of data and 4
// bits of padding; setting a padding bit decodes to the same bytes.
function withNonCanonicalTag(value: string): string {
  const segments = value.split('.');
  const tag = segments[5] ?? '';
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(tag.at(-1) ?? 'A');
  segments[5] = `${tag.slice(0, -1)}${alphabet[last ^ 1]}`;
  return segments.join('.');
}
