import { AppError, type ErrorKind } from '../errors/index.ts';

/** Every failure the jobs module itself reports. Handler errors pass through untouched. */
export type JobsErrorCode =
  /** A queue definition breaks a rule (name shape, retry limits, concurrency). A programming error. */
  | 'jobs.invalid_definition'
  /** A `listDeadLetters` limit outside 1-1000. */
  | 'jobs.invalid_limit'
  /** `register`, `send` or `schedule` was called before `start()` or after `stop()`. */
  | 'jobs.not_running'
  /** The queue was never registered in this process (dead-letter operations need its definition). */
  | 'jobs.unknown_queue'
  /** No waiting job with this id in the queue's dead-letter queue (already replayed, or expired). */
  | 'jobs.dead_letter_not_found'
  /** The replayed job collides with a job already in the queue under its singleton policy. */
  | 'jobs.replay_conflict';

/**
 * A typed jobs failure.
 *
 * @example
 * throw new JobsError('not_found', 'jobs.dead_letter_not_found', `No dead letter ${jobId} for ${name}`);
 */
export class JobsError extends AppError {
  declare readonly code: JobsErrorCode;

  constructor(kind: ErrorKind, code: JobsErrorCode, detail: string) {
    super(kind, code, detail);
    this.name = 'JobsError';
  }
}
