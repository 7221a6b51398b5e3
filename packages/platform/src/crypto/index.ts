export {
  type BlindIndex,
  type BlindIndexEncoding,
  type BlindIndexOptions,
  createBlindIndex,
  normaliseEmail,
} from './blind-index.ts';
export { CryptoError, type CryptoErrorCode, isCryptoError } from './crypto.errors.ts';
export {
  type FieldCrypto,
  GENERATED_KEYS_FILE,
  type LoadFieldCryptoOptions,
  loadFieldCrypto,
} from './crypto-config.ts';
export {
  ciphertextPrefix,
  createFieldEncryption,
  type FieldEncryption,
  FORMAT_VERSION,
} from './field-encryption.ts';
export { readOrCreateKeyFile } from './key-file.ts';
export {
  createKeyring,
  generateEncryptionKey,
  type Keyring,
  type KeyringDescription,
  type KeyringEntry,
  parseKeyring,
} from './keyring.ts';
export {
  countValuesToRotate,
  type RotateEncryptedColumnOptions,
  type RotationCounts,
  type RotationDatabase,
  type RotationFailure,
  type RotationProgress,
  type RotationResult,
  rotateEncryptedColumn,
} from './rotation.ts';
export {
  type ColumnRotationReport,
  type EncryptedColumnSpec,
  type EncryptionRotationSettings,
  type EncryptionRotationTask,
  type RotationPassReport,
  startEncryptionKeyRotation,
} from './rotation-task.ts';
