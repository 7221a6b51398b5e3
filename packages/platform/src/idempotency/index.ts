export type { IdempotencyTables } from './idempotency.repository.ts';
export {
  hashRequest,
  type IdempotencyClaim,
  type IdempotencySettings,
  installIdempotency,
  type StoredResponse,
  startIdempotencyPurge,
} from './idempotency.ts';
