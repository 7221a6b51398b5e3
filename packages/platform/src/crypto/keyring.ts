import { createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { CryptoError } from './crypto.errors.ts';

/** Key ids appear in every ciphertext and in logs, so they are short and plain. */
export const KEY_ID_PATTERN = /^[a-z0-9_-]{1,32}$/;

/** AES-256 and HMAC-SHA256 both take 32-byte keys. */
export const KEY_BYTES = 32;

// 32 bytes are 43 base64 characters plus one '=' of padding; either alphabet.
const BASE64_KEY_PATTERN = /^[A-Za-z0-9+/_-]{43}=?$/;

/** What a keyring shows of itself in logs and JSON: ids only. */
export type KeyringDescription = { activeKeyId: string; keyIds: string[] };

/**
 * Key-encryption keys by id. The first key is active (new values are wrapped
 * with it); every key can unwrap. The object holds no key bytes: they live in
 * a module-private map, so neither logging, `JSON.stringify`, spreading nor
 * `structuredClone` of a keyring can reach them.
 */
export type Keyring = {
  readonly activeKeyId: string;
  /** Every id, active first. */
  readonly keyIds: readonly string[];
  hasKey(keyId: string): boolean;
  toJSON(): KeyringDescription;
  toString(): string;
  [inspect.custom](): string;
};

/** One key for `createKeyring`; `key` is copied, so the caller may zero it afterwards. */
export type KeyringEntry = { id: string; key: Uint8Array };

const keyMaterial = new WeakMap<Keyring, ReadonlyMap<string, KeyObject>>();

/**
 * Parses `KEEL_ENCRYPTION_KEYS`: comma-separated `id:base64key` entries, the
 * active key first. Errors name the offending key id (or the entry's position
 * when the id itself is unusable, since a swapped `key:id` would otherwise
 * print the key) and never include key material.
 *
 * @example
 * const keyring = parseKeyring(process.env.KEEL_ENCRYPTION_KEYS ?? '');
 * keyring.activeKeyId; // 'k2'
 */
export function parseKeyring(value: string): Keyring {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) {
    throw new CryptoError(
      'crypto.invalid_keyring',
      'The keyring is empty; expected id:base64key[,id:base64key]',
    );
  }
  const decoded: KeyringEntry[] = [];
  try {
    entries.forEach((entry, index) => {
      const position = index + 1;
      const separator = entry.indexOf(':');
      if (separator === -1) {
        throw new CryptoError(
          'crypto.invalid_keyring',
          `Keyring entry ${position} is not in the form id:base64key`,
          {
            entry: position,
          },
        );
      }
      const id = entry.slice(0, separator).trim();
      assertKeyId(id, position);
      decoded.push({ id, key: decodeKeyMaterial(entry.slice(separator + 1).trim(), `Key ${id}`, id) });
    });
    return createKeyring(decoded);
  } finally {
    // Best effort: the KeyObjects hold their own copies, so the decoded bytes
    // need not stay on the heap. JavaScript cannot promise the string is gone.
    for (const entry of decoded) entry.key.fill(0);
  }
}

/**
 * Builds a keyring from decoded keys, the active key first. Same validation
 * as `parseKeyring`.
 *
 * @example
 * const keyring = createKeyring([{ id: 'k1', key: randomBytes(32) }]);
 */
export function createKeyring(entries: readonly KeyringEntry[]): Keyring {
  const first = entries[0];
  if (first === undefined) {
    throw new CryptoError('crypto.invalid_keyring', 'A keyring needs at least one key');
  }
  const keys = new Map<string, KeyObject>();
  entries.forEach((entry, index) => {
    assertKeyId(entry.id, index + 1);
    if (keys.has(entry.id)) {
      throw new CryptoError('crypto.invalid_keyring', `Key id ${entry.id} appears more than once`, {
        keyId: entry.id,
      });
    }
    if (entry.key.byteLength !== KEY_BYTES) {
      throw new CryptoError('crypto.invalid_keyring', `Key ${entry.id} must be exactly ${KEY_BYTES} bytes`, {
        keyId: entry.id,
      });
    }
    const keyObject = createSecretKey(Buffer.from(entry.key));
    // The same bytes under two ids is a copy-paste slip: "rotating" to it
    // would change nothing while looking done.
    for (const [otherId, other] of keys) {
      if (other.equals(keyObject)) {
        throw new CryptoError('crypto.invalid_keyring', `Keys ${otherId} and ${entry.id} are identical`, {
          keyId: entry.id,
        });
      }
    }
    keys.set(entry.id, keyObject);
  });

  const keyIds = Object.freeze([...keys.keys()]);
  const description = (): KeyringDescription => ({ activeKeyId: first.id, keyIds: [...keyIds] });
  const keyring: Keyring = Object.freeze({
    activeKeyId: first.id,
    keyIds,
    hasKey: (keyId: string) => keys.has(keyId),
    toJSON: description,
    toString: () => `Keyring(active=${first.id}, keys=${keyIds.join(',')})`,
    [inspect.custom]: () => `Keyring ${JSON.stringify(description())}`,
  });
  keyMaterial.set(keyring, keys);
  return keyring;
}

/**
 * A fresh random 32-byte key, base64-encoded, for `KEEL_ENCRYPTION_KEYS` or
 * the blind index key.
 *
 * @example
 * const value = `k2:${generateEncryptionKey()},${process.env.KEEL_ENCRYPTION_KEYS}`;
 */
export function generateEncryptionKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

/**
 * The key object for `keyId`. Module-internal: index.ts does not export it,
 * so application code can use keys only through the crypto operations.
 */
export function keyObjectFor(keyring: Keyring, keyId: string): KeyObject {
  const keys = keyMaterial.get(keyring);
  if (keys === undefined) {
    throw new CryptoError('crypto.invalid_keyring', 'Not a keyring built by parseKeyring or createKeyring');
  }
  const key = keys.get(keyId);
  if (key === undefined) {
    throw new CryptoError('crypto.unknown_key', `No key with id ${keyId} in the keyring`, { keyId });
  }
  return key;
}

/**
 * Decodes base64 (standard or URL-safe) of exactly 32 bytes. `label` names the
 * key in the error; the encoded value never appears in it.
 */
export function decodeKeyMaterial(encoded: string, label: string, keyId?: string): Buffer {
  const extensions = keyId === undefined ? {} : { keyId };
  const code = keyId === undefined ? 'crypto.invalid_key' : 'crypto.invalid_keyring';
  if (!BASE64_KEY_PATTERN.test(encoded)) {
    throw new CryptoError(code, `${label} must be ${KEY_BYTES} bytes encoded as base64`, extensions);
  }
  const key = Buffer.from(encoded.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
  if (key.byteLength !== KEY_BYTES) {
    key.fill(0);
    throw new CryptoError(code, `${label} must be ${KEY_BYTES} bytes encoded as base64`, extensions);
  }
  return key;
}

function assertKeyId(id: string, position: number): void {
  if (!KEY_ID_PATTERN.test(id)) {
    // The id is not echoed: a swapped or mistyped entry may hold key material here.
    throw new CryptoError(
      'crypto.invalid_keyring',
      `Keyring entry ${position} has an invalid key id; ids are 1-32 characters of a-z, 0-9, _ and -`,
      { entry: position },
    );
  }
}
