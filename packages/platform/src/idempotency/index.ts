export type { IdempotencyTables } from './idempotency.repository.ts';
export {
  type ClaimCompletionSql,
  hashRequest,
  type IdempotencyClaim,
  type IdempotencySettings,
  idempotencyInProgress,
  installIdempotency,
  type StoredResponse,
  startIdempotencyPurge,
} from './idempotency.ts';
