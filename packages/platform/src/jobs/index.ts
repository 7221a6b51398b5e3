export { JobsError, type JobsErrorCode } from './jobs.errors.ts';
export type { JobFailureOutcome } from './jobs.metrics.ts';
export {
  createJobs,
  DEAD_LETTER_RETENTION_SECONDS,
  type DeadLetter,
  type Jobs,
  type JobsOptions,
  type ScheduleJobOptions,
  type SendJobOptions,
} from './jobs.service.ts';
export {
  assertValidQueueName,
  deadLetterQueueName,
  describeJobFailure,
  isRetryableJobError,
  JOB_QUEUE_DEFAULTS,
  type JobContext,
  type JobFailureOutput,
  type JobHandler,
  type JobQueueDefinition,
  type JobQueuePolicy,
  type ResolvedJobQueue,
  resolveJobQueue,
} from './jobs.ts';
