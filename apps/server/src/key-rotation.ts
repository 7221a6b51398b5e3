import { webhookSecretColumn } from '@keel/orders';
import { mfaSecretColumn } from '@keel/platform/auth';
import type { PlatformConfig } from '@keel/platform/config';
import {
  type EncryptedColumnSpec,
  type EncryptionRotationTask,
  startEncryptionKeyRotation,
} from '@keel/platform/crypto';
import type { Database } from '@keel/platform/db';
import type { Logger } from '@keel/platform/observability';
import type { PlatformSecurity } from '@keel/platform/server';
import { TELEMEDICINE_ENCRYPTED_COLUMNS } from '@keel/telemedicine';

/** Every encrypted column of the server; services' columns join this list as they arrive. */
export const ENCRYPTED_COLUMNS: readonly EncryptedColumnSpec[] = [
  mfaSecretColumn,
  webhookSecretColumn,
  ...TELEMEDICINE_ENCRYPTED_COLUMNS,
];

/**
 * Re-wraps encrypted columns under the active key in the background: after a
 * new key is put first in KEEL_ENCRYPTION_KEYS, old rows move to it in
 * batches while everything stays readable (see docs/runbooks/key-rotation.md).
 */
export function startKeyRotation(options: {
  database: Database;
  security: PlatformSecurity;
  config: PlatformConfig;
  logger: Logger;
}): EncryptionRotationTask {
  return startEncryptionKeyRotation({
    database: options.database,
    encryption: options.security.fieldCrypto.encryption,
    columns: ENCRYPTED_COLUMNS,
    batchSize: options.config.KEEL_KEY_ROTATION_BATCH_SIZE,
    intervalMs: 10 * 60_000,
    logger: options.logger.child({ component: 'key-rotation' }),
  });
}
