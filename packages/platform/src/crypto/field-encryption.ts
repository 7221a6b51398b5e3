import { createCipheriv, createDecipheriv, type KeyObject, randomBytes } from 'node:crypto';
import { CryptoError } from './crypto.errors.ts';
import { KEY_BYTES, KEY_ID_PATTERN, type Keyring, keyObjectFor } from './keyring.ts';

/**
 * The envelope format, version 1. Six dot-separated ASCII segments:
 *
 *   kv1.<kid>.<wrappedDek>.<iv>.<ciphertext>.<tag>
 *
 * - `kid`: id of the key-encryption key (KEK) that wrapped the data key.
 * - `wrappedDek`: base64url of wrapIv(12) ‖ AES-256-GCM(KEK, DEK)(32) ‖ wrapTag(16),
 *   with AAD `kv1.dek.<kid>`, so the kid segment is authenticated too.
 * - `iv`, `ciphertext`, `tag`: base64url of the AES-256-GCM encryption of the
 *   UTF-8 plaintext under the data key (DEK), with AAD `kv1.data.<caller aad>`.
 *
 * The data segments do not depend on the KEK, which is what makes rotation
 * cheap: re-wrapping the 32-byte DEK replaces segments 2-3 and leaves the rest.
 */
export const FORMAT_VERSION = 'kv1';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const WRAPPED_DEK_BYTES = IV_BYTES + KEY_BYTES + TAG_BYTES;
const SEGMENT_COUNT = 6;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*$/;

/**
 * Authenticated encryption of single column values under a keyring.
 * Every method throws `CryptoError`; none puts plaintext or key bytes in it.
 */
export type FieldEncryption = {
  /** The key new values are wrapped with. */
  readonly activeKeyId: string;
  /**
   * Encrypts under the active key. `aad` says where the value lives
   * (`table:column:rowId`); `decrypt` needs the same string.
   */
  encrypt(plaintext: string, aad: string): string;
  /** Decrypts a value under any key of the keyring; fails on the wrong AAD or any alteration. */
  decrypt(ciphertext: string, aad: string): string;
  /** The id of the key that wrapped `ciphertext` (parses, does not decrypt). */
  keyIdOf(ciphertext: string): string;
  /** True when `ciphertext` is wrapped by a key other than the active one. */
  needsRotation(ciphertext: string): boolean;
  /**
   * The same value under the active key: verifies it (full decrypt with
   * `aad`), then re-wraps only its data key. Returns `ciphertext` unchanged
   * when it is already under the active key.
   */
  rewrap(ciphertext: string, aad: string): string;
};

type Envelope = {
  keyId: string;
  wrappedDek: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
};

/**
 * Envelope encryption with AES-256-GCM: each value gets a fresh random 32-byte
 * data key that encrypts it; the data key is wrapped by the keyring's active
 * key and stored beside the ciphertext.
 *
 * Nonces: a data key encrypts exactly one value, so its IV can never repeat
 * under it. The KEK wraps one data key per `encrypt` (and per rotated value),
 * each with a random 96-bit IV; NIST SP 800-38D caps that at 2^32 wraps per
 * KEK to keep the IV collision chance under 2^-32. Rotate the KEK well before
 * four billion writes.
 *
 * @example
 * const encryption = createFieldEncryption(parseKeyring(process.env.KEEL_ENCRYPTION_KEYS ?? ''));
 * const stored = encryption.encrypt('+44 20 7946 0000', `user_metadata.users:phone:${userId}`);
 * encryption.decrypt(stored, `user_metadata.users:phone:${userId}`); // '+44 20 7946 0000'
 */
export function createFieldEncryption(keyring: Keyring): FieldEncryption {
  const activeKeyId = keyring.activeKeyId;
  // Fail at start-up, not on the first write, if the keyring is not a real one.
  const activeKey = keyObjectFor(keyring, activeKeyId);

  function unwrapDataKey(envelope: Envelope): Buffer {
    const kek = keyObjectFor(keyring, envelope.keyId);
    return openGcm(
      kek,
      envelope.wrappedDek.subarray(0, IV_BYTES),
      envelope.wrappedDek.subarray(IV_BYTES, IV_BYTES + KEY_BYTES),
      envelope.wrappedDek.subarray(IV_BYTES + KEY_BYTES),
      wrapAad(envelope.keyId),
    );
  }

  function wrapDataKey(dataKey: Buffer): Buffer {
    const sealed = sealGcm(activeKey, dataKey, wrapAad(activeKeyId));
    return Buffer.concat([sealed.iv, sealed.ciphertext, sealed.tag]);
  }

  function openEnvelope(envelope: Envelope, aad: string): Buffer {
    const dataKey = unwrapDataKey(envelope);
    try {
      return openGcm(dataKey, envelope.iv, envelope.ciphertext, envelope.tag, dataAad(aad));
    } finally {
      dataKey.fill(0);
    }
  }

  return {
    activeKeyId,

    encrypt(plaintext, aad) {
      assertWellFormed(plaintext, 'The plaintext');
      assertAad(aad);
      // A fresh key per value: no nonce bookkeeping across values, and rotation
      // only ever touches these 32 bytes.
      const dataKey = randomBytes(KEY_BYTES);
      try {
        const sealed = sealGcm(dataKey, Buffer.from(plaintext, 'utf8'), dataAad(aad));
        return serialise({ keyId: activeKeyId, wrappedDek: wrapDataKey(dataKey), ...sealed });
      } finally {
        dataKey.fill(0);
      }
    },

    decrypt(ciphertext, aad) {
      assertAad(aad);
      const plaintext = openEnvelope(parse(ciphertext), aad);
      return plaintext.toString('utf8');
    },

    keyIdOf(ciphertext) {
      return parse(ciphertext).keyId;
    },

    needsRotation(ciphertext) {
      return parse(ciphertext).keyId !== activeKeyId;
    },

    rewrap(ciphertext, aad) {
      assertAad(aad);
      const envelope = parse(ciphertext);
      const dataKey = unwrapDataKey(envelope);
      try {
        // Verifying the whole value first means rotation never re-blesses a
        // corrupted or misplaced value under the new key.
        openGcm(dataKey, envelope.iv, envelope.ciphertext, envelope.tag, dataAad(aad)).fill(0);
        if (envelope.keyId === activeKeyId) return ciphertext;
        return serialise({ ...envelope, keyId: activeKeyId, wrappedDek: wrapDataKey(dataKey) });
      } finally {
        dataKey.fill(0);
      }
    },
  };
}

/**
 * The prefix every value wrapped by `keyId` starts with; rotation selects rows
 * that lack the active key's prefix.
 *
 * @example
 * ciphertextPrefix('k2'); // 'kv1.k2.'
 */
export function ciphertextPrefix(keyId: string): string {
  return `${FORMAT_VERSION}.${keyId}.`;
}

// The version prefix keeps a future format from accepting a kv1 value's AAD
// as its own; the caller's AAD binds the value to its row and column, so a
// value copied to another row (or swapped between columns) fails to decrypt.
function dataAad(aad: string): Buffer {
  return Buffer.from(`${FORMAT_VERSION}.data.${aad}`, 'utf8');
}

function wrapAad(keyId: string): Buffer {
  return Buffer.from(`${FORMAT_VERSION}.dek.${keyId}`, 'utf8');
}

function sealGcm(
  key: KeyObject | Buffer,
  plaintext: Buffer,
  aad: Buffer,
): { iv: Buffer; ciphertext: Buffer; tag: Buffer } {
  // A random 96-bit IV: GCM's native size, no counter state to persist or
  // share between processes.
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

function openGcm(key: KeyObject | Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    // Node's message says nothing secret, but the reason (wrong key, wrong
    // AAD, altered bytes) is deliberately not distinguished: no oracle.
    throw new CryptoError(
      'crypto.decrypt_failed',
      'The value could not be decrypted: wrong key, wrong associated data, or it was altered',
    );
  }
}

function serialise(envelope: Envelope): string {
  return [
    FORMAT_VERSION,
    envelope.keyId,
    envelope.wrappedDek.toString('base64url'),
    envelope.iv.toString('base64url'),
    envelope.ciphertext.toString('base64url'),
    envelope.tag.toString('base64url'),
  ].join('.');
}

function parse(value: string): Envelope {
  const segments = value.split('.');
  if (segments.length !== SEGMENT_COUNT) throw malformed(`expected ${SEGMENT_COUNT} segments`);
  const [version, keyId, wrappedDek, iv, ciphertext, tag] = segments as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (version !== FORMAT_VERSION) throw malformed('unsupported format version');
  if (!KEY_ID_PATTERN.test(keyId)) throw malformed('invalid key id');
  return {
    keyId,
    wrappedDek: decodeSegment(wrappedDek, 'wrapped key', WRAPPED_DEK_BYTES),
    iv: decodeSegment(iv, 'iv', IV_BYTES),
    ciphertext: decodeSegment(ciphertext, 'ciphertext', undefined),
    tag: decodeSegment(tag, 'tag', TAG_BYTES),
  };
}

function decodeSegment(segment: string, name: string, expectedBytes: number | undefined): Buffer {
  if (!BASE64URL_PATTERN.test(segment)) throw malformed(`${name} is not base64url`);
  const bytes = Buffer.from(segment, 'base64url');
  // Only the canonical encoding is accepted, so every change to the stored
  // text is a change to the authenticated bytes, never a silent no-op.
  if (bytes.toString('base64url') !== segment) throw malformed(`${name} is not canonical base64url`);
  if (expectedBytes !== undefined && bytes.byteLength !== expectedBytes) {
    throw malformed(`${name} has the wrong length`);
  }
  return bytes;
}

function malformed(reason: string): CryptoError {
  return new CryptoError(
    'crypto.malformed_ciphertext',
    `The value is not a ${FORMAT_VERSION} envelope: ${reason}`,
  );
}

// An empty AAD would let a value be copied to any row; lone surrogates would
// be replaced in UTF-8, so two different AADs could encode to the same bytes.
function assertAad(aad: string): void {
  if (aad === '') {
    throw new CryptoError('crypto.invalid_input', 'The associated data must name where the value lives');
  }
  assertWellFormed(aad, 'The associated data');
}

function assertWellFormed(value: string, label: string): void {
  // Lone surrogates cannot round-trip through UTF-8; reject rather than
  // decrypt to something other than what was encrypted.
  if (!value.isWellFormed()) {
    throw new CryptoError('crypto.invalid_input', `${label} is not well-formed Unicode`);
  }
}
