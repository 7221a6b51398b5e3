import { createSecretKey } from 'node:crypto';
import path from 'node:path';
import { ConfigError } from '../config/index.ts';
import { isCryptoError } from './crypto.errors.ts';
import { createFieldEncryption, type FieldEncryption } from './field-encryption.ts';
import { readOrCreateKeyFile } from './key-file.ts';
import {
  decodeKeyMaterial,
  generateEncryptionKey,
  type Keyring,
  keyObjectFor,
  parseKeyring,
} from './keyring.ts';

/** The keys a process encrypts and indexes fields with, and where they came from. */
export type FieldCrypto = {
  keyring: Keyring;
  encryption: FieldEncryption;
  /** 32 bytes, base64: the `key` for `createBlindIndex`. Never log it. */
  blindIndexKey: string;
  /** `generated`: read from (or just written to) the development key file under the data directory. */
  source: 'environment' | 'generated';
};

export type LoadFieldCryptoOptions = {
  /** `KEEL_ENCRYPTION_KEYS`; empty means unset. */
  encryptionKeys?: string;
  /** `KEEL_BLIND_INDEX_KEY`; empty means unset. */
  blindIndexKey?: string;
  /** `KEEL_DATA_DIR`: where the development key file lives. */
  dataDirectory: string;
  /** True outside production: with both variables unset, use (or create) the development key file. */
  allowGenerate: boolean;
};

/** Name of the development key file inside the data directory. */
export const GENERATED_KEYS_FILE = 'encryption-keys.json';

const KEY_FILE_VERSION = 1;
const FIRST_KEY_ID = 'k1';
const ENCRYPTION_KEYS = 'KEEL_ENCRYPTION_KEYS';
const BLIND_INDEX_KEY = 'KEEL_BLIND_INDEX_KEY';

type KeyFile = { version: number; encryptionKeys: string; blindIndexKey: string };

/**
 * Loads the field-encryption keyring and blind index key from
 * `KEEL_ENCRYPTION_KEYS` / `KEEL_BLIND_INDEX_KEY`.
 *
 * With both unset and `allowGenerate` (development, the embedded database),
 * it reads `<dataDirectory>/encryption-keys.json`, creating it (mode 0600)
 * with a fresh `k1` key and blind index key on first start, so a restart can
 * still read what the last run wrote. Without `allowGenerate` (production)
 * missing keys are a `ConfigError`: a generated key would live on one
 * machine's disk and every other instance would fail to read its writes.
 *
 * Exactly one of the two set is refused in every environment: data written
 * under an environment keyring with a generated blind index key (or the
 * reverse) cannot be looked up once the generated half is lost.
 *
 * Errors name the variable (or the key file) and never contain key material.
 *
 * @example
 * const fieldCrypto = loadFieldCrypto({
 *   encryptionKeys: config.KEEL_ENCRYPTION_KEYS,
 *   blindIndexKey: config.KEEL_BLIND_INDEX_KEY,
 *   dataDirectory: config.KEEL_DATA_DIR,
 *   allowGenerate: config.NODE_ENV !== 'production',
 * });
 * const emailIndex = createBlindIndex({ key: fieldCrypto.blindIndexKey, context: 'user_metadata.users.email', normalise: normaliseEmail });
 */
export function loadFieldCrypto(options: LoadFieldCryptoOptions): FieldCrypto {
  const encryptionKeys = presentOrUndefined(options.encryptionKeys);
  const blindIndexKey = presentOrUndefined(options.blindIndexKey);

  if (encryptionKeys !== undefined && blindIndexKey !== undefined) {
    return buildFieldCrypto(encryptionKeys, blindIndexKey, 'environment', (variable) => variable);
  }
  if (encryptionKeys !== undefined || blindIndexKey !== undefined) {
    const [missing, present] =
      encryptionKeys === undefined ? [ENCRYPTION_KEYS, BLIND_INDEX_KEY] : [BLIND_INDEX_KEY, ENCRYPTION_KEYS];
    throw new ConfigError([
      `${missing}: must be set because ${present} is; the encryption keyring and the blind index key ` +
        'are deployed together (generate one with `npm run keel -- keys generate ' +
        `${missing === ENCRYPTION_KEYS ? 'encryption k1' : 'blind-index'}\`)`,
    ]);
  }
  if (!options.allowGenerate) {
    throw new ConfigError([
      `${ENCRYPTION_KEYS}: required in production (generate with \`npm run keel -- keys generate encryption k1\`)`,
      `${BLIND_INDEX_KEY}: required in production (generate with \`npm run keel -- keys generate blind-index\`)`,
    ]);
  }

  const file = path.resolve(options.dataDirectory, GENERATED_KEYS_FILE);
  const stored = readOrCreateDevelopmentKeys(file);
  return buildFieldCrypto(stored.encryptionKeys, stored.blindIndexKey, 'generated', () => file);
}

function presentOrUndefined(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}

/** `where` names the variable (or the file) a problem is reported against. */
function buildFieldCrypto(
  encryptionKeys: string,
  blindIndexKey: string,
  source: FieldCrypto['source'],
  where: (variable: string) => string,
): FieldCrypto {
  const problems: string[] = [];
  let keyring: Keyring | undefined;
  try {
    keyring = parseKeyring(encryptionKeys);
  } catch (error) {
    // CryptoError messages name key ids and positions only, never key bytes.
    if (!isCryptoError(error)) throw error;
    problems.push(`${where(ENCRYPTION_KEYS)}: ${error.message}`);
  }
  let blindKeyBytes: Buffer | undefined;
  try {
    blindKeyBytes = decodeKeyMaterial(blindIndexKey, 'The blind index key');
  } catch (error) {
    if (!isCryptoError(error)) throw error;
    problems.push(`${where(BLIND_INDEX_KEY)}: ${error.message}`);
  }
  if (keyring !== undefined && blindKeyBytes !== undefined) {
    // One key doing both jobs would tie the blind index to a key that rotation retires.
    const [ring, blindKey] = [keyring, createSecretKey(blindKeyBytes)];
    const reused = ring.keyIds.find((keyId) => keyObjectFor(ring, keyId).equals(blindKey));
    if (reused !== undefined) {
      problems.push(
        `${where(BLIND_INDEX_KEY)}: must differ from every encryption key (it equals key ${reused})`,
      );
    }
  }
  blindKeyBytes?.fill(0);
  if (problems.length > 0 || keyring === undefined) throw new ConfigError(problems);
  return { keyring, encryption: createFieldEncryption(keyring), blindIndexKey, source };
}

function readOrCreateDevelopmentKeys(file: string): KeyFile {
  return readOrCreateKeyFile(file, {
    create: () => ({
      version: KEY_FILE_VERSION,
      encryptionKeys: `${FIRST_KEY_ID}:${generateEncryptionKey()}`,
      blindIndexKey: generateEncryptionKey(),
    }),
    isValid: isKeyFile,
    // Never suggest deleting it: whatever was encrypted with it would become unreadable.
    invalidProblem: (keyFile) =>
      `${keyFile}: not a Keel key file (expected version ${KEY_FILE_VERSION} with encryptionKeys and ` +
      `blindIndexKey); restore it from a backup, or set ${ENCRYPTION_KEYS} and ${BLIND_INDEX_KEY}`,
  });
}

function isKeyFile(value: unknown): value is KeyFile {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return (
    candidate.version === KEY_FILE_VERSION &&
    typeof candidate.encryptionKeys === 'string' &&
    typeof candidate.blindIndexKey === 'string'
  );
}
