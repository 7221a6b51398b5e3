import { createHmac, createSecretKey, hkdfSync } from 'node:crypto';
import { CryptoError } from './crypto.errors.ts';
import { decodeKeyMaterial, KEY_BYTES } from './keyring.ts';

/** Contexts name the field they index: `user_metadata.users.email`. */
const CONTEXT_PATTERN = /^[a-z0-9_.:-]{1,128}$/;

export type BlindIndexEncoding = 'hex' | 'base64url';

export type BlindIndexOptions = {
  /** 32 bytes, base64 (the `KEEL_BLIND_INDEX_KEY`); must not be one of the encryption keys. */
  key: string;
  /** What is indexed, e.g. `user_metadata.users.email`; different contexts never share an index. */
  context: string;
  /** Maps equal values to one form before hashing (case, spacing, Unicode form). */
  normalise: (value: string) => string;
  /** Default `hex`. */
  encoding?: BlindIndexEncoding;
};

/** Computes the lookup token for one field. Holds a derived key; shows only its context. */
export type BlindIndex = {
  readonly context: string;
  compute(value: string): string;
  toJSON(): { context: string };
};

/**
 * A blind index: HMAC-SHA256 of the normalised value under a key derived for
 * one context, stored next to an encrypted column so equality lookups
 * (`where email_index = $1`) work without decrypting. It reveals which rows
 * share a value, nothing more; use it only for fields that need lookup.
 *
 * The per-context key comes from HKDF-SHA256(indexKey, info = context), so
 * the same phone number in two columns gives unrelated tokens and one
 * column's tokens cannot be matched against another's.
 *
 * @example
 * const emailIndex = createBlindIndex({
 *   key: process.env.KEEL_BLIND_INDEX_KEY ?? '',
 *   context: 'user_metadata.users.email',
 *   normalise: normaliseEmail,
 * });
 * const token = emailIndex.compute('Ada@Example.com'); // same as for 'ada@example.com'
 */
export function createBlindIndex(options: BlindIndexOptions): BlindIndex {
  const { context, normalise } = options;
  const encoding = options.encoding ?? 'hex';
  if (!CONTEXT_PATTERN.test(context)) {
    throw new CryptoError(
      'crypto.invalid_input',
      'A blind index context is 1-128 characters of a-z, 0-9, _, ., : and -',
    );
  }
  const indexKey = decodeKeyMaterial(options.key, 'The blind index key');
  let contextKey: ReturnType<typeof createSecretKey>;
  try {
    contextKey = createSecretKey(
      Buffer.from(hkdfSync('sha256', indexKey, Buffer.alloc(0), `keel.blind-index.v1.${context}`, KEY_BYTES)),
    );
  } finally {
    indexKey.fill(0);
  }

  return Object.freeze({
    context,
    compute(value: string): string {
      const normalised = normalise(value);
      if (!normalised.isWellFormed()) {
        throw new CryptoError('crypto.invalid_input', 'The value to index is not well-formed Unicode');
      }
      return createHmac('sha256', contextKey).update(normalised, 'utf8').digest(encoding);
    },
    toJSON: () => ({ context }),
  });
}

/**
 * The usual email normaliser: trims, composes Unicode (NFC) and lowercases
 * the whole address. Lowercasing the local part is stricter than RFC 5321,
 * and it is what every mainstream provider and user expects.
 *
 * @example
 * normaliseEmail(' Ada@Example.COM '); // 'ada@example.com'
 */
export function normaliseEmail(value: string): string {
  return value.trim().normalize('NFC').toLowerCase();
}
