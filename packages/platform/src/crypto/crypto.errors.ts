import { AppError } from '../errors/index.ts';

/**
 * Every failure the crypto module reports. All are server faults from a client's
 * point of view (kind `internal`, a generic 500 over HTTP); the code tells an
 * operator which one. Messages name key ids and option names, never key
 * material, plaintext or ciphertext.
 */
export type CryptoErrorCode =
  /** `KEEL_ENCRYPTION_KEYS` (or a keyring built in code) is malformed. */
  | 'crypto.invalid_keyring'
  /** A standalone key (the blind index key) is not 32 bytes of base64. */
  | 'crypto.invalid_key'
  /** A plaintext, AAD, blind index context or option cannot be used as given. */
  | 'crypto.invalid_input'
  /** A stored value is not a `kv1` envelope (wrong shape, version or encoding). */
  | 'crypto.malformed_ciphertext'
  /** A stored value names a key id the keyring does not hold. */
  | 'crypto.unknown_key'
  /** Authentication failed: wrong key, wrong AAD, or the value was altered. */
  | 'crypto.decrypt_failed'
  /** A table or column name for rotation fails the identifier allow-list. */
  | 'crypto.invalid_identifier';

/**
 * A typed crypto failure; an `AppError` so the HTTP layer renders it as a
 * generic 500 and jobs treat it as non-retryable.
 *
 * @example
 * try {
 *   encryption.decrypt(value, aad);
 * } catch (error) {
 *   if (isCryptoError(error) && error.code === 'crypto.decrypt_failed') alertOperator(error);
 *   throw error;
 * }
 */
export class CryptoError extends AppError {
  declare readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, detail: string, extensions: Record<string, unknown> = {}) {
    super('internal', code, detail, { extensions });
    this.name = 'CryptoError';
  }
}

/**
 * Narrows an unknown failure to a `CryptoError`.
 *
 * @example
 * if (isCryptoError(error) && error.code === 'crypto.unknown_key') logger.error(error.extensions, 'key missing');
 */
export function isCryptoError(error: unknown): error is CryptoError {
  return error instanceof CryptoError;
}
