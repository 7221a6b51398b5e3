export { canonicalEventJson, computeSealHash, GENESIS_HASH, type SealedEventColumns } from './audit.chain.ts';
export { AUDIT_APPEND_ONLY_SQLSTATE, type AuditErrorCode } from './audit.errors.ts';
export {
  type AuditPartitionMaintenanceSettings,
  type AuditPartitionResult,
  type AuditPartitionStatus,
  ensureAuditPartitions,
  startAuditPartitionMaintenance,
} from './audit.partitions.ts';
export { REDACTED, type RedactOptions, redactChanges } from './audit.redact.ts';
export type { AuditTables, ChainHead } from './audit.repository.ts';
export {
  type AuditSealerSettings,
  type SealResult,
  sealAuditEvents,
  startAuditSealer,
} from './audit.sealer.ts';
export { listAuditEvents, recordAuditEvent, recordAuditEventWhen } from './audit.service.ts';
export type {
  AuditActorType,
  AuditEvent,
  AuditEventInput,
  AuditEventPage,
  AuditEventQuery,
  AuditOutcome,
} from './audit.ts';
export { LIST_LIMIT_MAX, USER_AGENT_MAX_LENGTH } from './audit.ts';
export { type AuditChainBreak, type AuditChainVerification, verifyAuditChain } from './audit.verify.ts';
