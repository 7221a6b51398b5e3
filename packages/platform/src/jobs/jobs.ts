import { assertNever, isAppError } from '../errors/index.ts';
import { JobsError } from './jobs.errors.ts';

/**
 * How a queue admits jobs. `singletonKey` narrows each rule to jobs sharing that key.
 * - `standard`: no limit.
 * - `short`: at most one job waiting; more may run.
 * - `singleton`: at most one job running; more may wait.
 * - `stately`: at most one waiting and one running (a second send while one waits is dropped).
 * - `exclusive`: at most one job waiting or running.
 */
export type JobQueuePolicy = 'standard' | 'short' | 'singleton' | 'stately' | 'exclusive';

/** What a handler receives. No payload is ever logged by the module: it may hold personal data. */
export type JobContext<Payload> = {
  id: string;
  name: string;
  data: Payload;
  /** 0 on the first attempt; 1 on the first retry. */
  retryCount: number;
  /** Aborted when the job is taken back (shutdown past its deadline, expiry); stop work that can no longer land. */
  signal: AbortSignal;
};

export type JobHandler<Payload> = (job: JobContext<Payload>) => Promise<void>;

/**
 * A named queue and the handler that works it. Unset fields take `JOB_QUEUE_DEFAULTS`.
 *
 * Handler failures follow STYLE.md rule 18: an `AppError` of kind `unavailable` or
 * `rate_limited`, and any error that is not an `AppError`, is retried with backoff; every
 * other `AppError` (invalid, conflict, not_found, forbidden, internal...) is a verdict that
 * another attempt cannot change, so the job skips its remaining retries and is dead-lettered.
 */
export type JobQueueDefinition<Payload> = {
  /** Lower-case words joined by `.` or `-`: `orders.low-stock-alert`. */
  name: string;
  /** Retries after the first attempt. */
  retryLimit?: number;
  /** Whole seconds; the first delay when `retryBackoff` is on. */
  retryDelaySeconds?: number;
  /** Exponential backoff with jitter: about `retryDelaySeconds * 2^retryCount`. */
  retryBackoff?: boolean;
  /** Caps the backoff delay. */
  retryDelayMaxSeconds?: number;
  /** How long one attempt may run before it is failed (and retried). */
  expireInSeconds?: number;
  policy?: JobQueuePolicy;
  /** Jobs that fail for good are copied to `<name>.dead-letter`, to be listed and replayed. */
  deadLetter?: boolean;
  /** Jobs this process runs at once from this queue. */
  concurrency?: number;
  /**
   * Jobs each of the `concurrency` workers claims per fetch and then runs one after another
   * (2-100). While fetches come back full, a worker fetches again at once instead of waiting out
   * the poll interval, so a backlog drains at the handlers' speed. Larger means fewer fetches but
   * jobs held longer by one process. pg-boss times a fetch as a whole against `expireInSeconds`,
   * so `fetchSize` runs of the slowest attempt must fit in it: keep it small for slow handlers.
   */
  fetchSize?: number;
  handler: JobHandler<Payload>;
};

/** A definition with every default applied and every rule checked. */
export type ResolvedJobQueue<Payload> = Required<
  Omit<JobQueueDefinition<Payload>, 'retryDelayMaxSeconds' | 'expireInSeconds'>
> &
  Pick<JobQueueDefinition<Payload>, 'retryDelayMaxSeconds' | 'expireInSeconds'> & {
    /** `undefined` when `deadLetter` is false. */
    deadLetterQueue: string | undefined;
  };

export const JOB_QUEUE_DEFAULTS = {
  retryLimit: 5,
  retryDelaySeconds: 2,
  retryBackoff: true,
  deadLetter: true,
  policy: 'standard',
  concurrency: 1,
  fetchSize: 4,
} as const satisfies Partial<JobQueueDefinition<unknown>>;

const MIN_FETCH_SIZE = 2;
const MAX_FETCH_SIZE = 100;
const DEAD_LETTER_SUFFIX = '.dead-letter';
const QUEUE_NAME_PATTERN = /^[a-z0-9]+(?:[.-][a-z0-9]+)*$/;
const QUEUE_NAME_MAX_LENGTH = 100;
const POLICIES: ReadonlySet<string> = new Set<JobQueuePolicy>([
  'standard',
  'short',
  'singleton',
  'stately',
  'exclusive',
]);

/**
 * The queue a queue's failed jobs are copied to.
 *
 * @example
 * deadLetterQueueName('orders.low-stock-alert'); // 'orders.low-stock-alert.dead-letter'
 */
export function deadLetterQueueName(name: string): string {
  return `${name}${DEAD_LETTER_SUFFIX}`;
}

/**
 * Applies defaults and checks the definition; throws `jobs.invalid_definition`.
 *
 * @example
 * const queue = resolveJobQueue({ name: 'orders.low-stock-alert', handler });
 * queue.retryLimit; // 5
 */
export function resolveJobQueue<Payload>(definition: JobQueueDefinition<Payload>): ResolvedJobQueue<Payload> {
  assertValidQueueName(definition.name);
  const resolved: ResolvedJobQueue<Payload> = {
    name: definition.name,
    retryLimit: definition.retryLimit ?? JOB_QUEUE_DEFAULTS.retryLimit,
    retryDelaySeconds: definition.retryDelaySeconds ?? JOB_QUEUE_DEFAULTS.retryDelaySeconds,
    retryBackoff: definition.retryBackoff ?? JOB_QUEUE_DEFAULTS.retryBackoff,
    retryDelayMaxSeconds: definition.retryDelayMaxSeconds,
    expireInSeconds: definition.expireInSeconds,
    policy: definition.policy ?? JOB_QUEUE_DEFAULTS.policy,
    deadLetter: definition.deadLetter ?? JOB_QUEUE_DEFAULTS.deadLetter,
    concurrency: definition.concurrency ?? JOB_QUEUE_DEFAULTS.concurrency,
    fetchSize: definition.fetchSize ?? JOB_QUEUE_DEFAULTS.fetchSize,
    handler: definition.handler,
    deadLetterQueue: undefined,
  };
  // pg-boss stores these as integers and rejects fractions, so say which field is wrong here.
  assertInteger(resolved.name, 'retryLimit', resolved.retryLimit, 0);
  assertInteger(resolved.name, 'retryDelaySeconds', resolved.retryDelaySeconds, 0);
  assertInteger(resolved.name, 'concurrency', resolved.concurrency, 1);
  // pg-boss re-fetches without waiting only after a full fetch of more than one job: at 1 every
  // worker would run one job per poll interval however long the backlog.
  assertInteger(resolved.name, 'fetchSize', resolved.fetchSize, MIN_FETCH_SIZE, MAX_FETCH_SIZE);
  if (resolved.retryDelayMaxSeconds !== undefined)
    assertInteger(resolved.name, 'retryDelayMaxSeconds', resolved.retryDelayMaxSeconds, 1);
  if (resolved.expireInSeconds !== undefined)
    assertInteger(resolved.name, 'expireInSeconds', resolved.expireInSeconds, 1);
  if (!POLICIES.has(resolved.policy))
    throw invalidDefinition(resolved.name, `policy must be one of ${[...POLICIES].join(', ')}`);
  if (typeof resolved.handler !== 'function') throw invalidDefinition(resolved.name, 'handler is required');
  resolved.deadLetterQueue = resolved.deadLetter ? deadLetterQueueName(resolved.name) : undefined;
  return resolved;
}

/**
 * Throws `jobs.invalid_definition` unless `name` is lower-case words joined by `.` or `-`
 * and is not itself a dead-letter queue name.
 *
 * @example
 * assertValidQueueName('orders.low-stock-alert');
 */
export function assertValidQueueName(name: string): void {
  if (typeof name !== 'string' || !QUEUE_NAME_PATTERN.test(name) || name.length > QUEUE_NAME_MAX_LENGTH)
    throw invalidDefinition(
      String(name),
      `queue names are lower-case words joined by "." or "-", at most ${QUEUE_NAME_MAX_LENGTH} characters`,
    );
  if (name.endsWith(DEAD_LETTER_SUFFIX))
    throw invalidDefinition(
      name,
      `names ending in "${DEAD_LETTER_SUFFIX}" are reserved for dead-letter queues`,
    );
}

/**
 * Whether another attempt could succeed (STYLE.md rule 18). Errors that are not `AppError`s
 * (a dropped connection, a timeout, a bug) are retried: the module cannot tell them apart, and
 * a bug simply reaches the dead-letter queue after the last retry.
 *
 * @example
 * isRetryableJobError(new AppError('unavailable', 'database.unavailable', '...')); // true
 * isRetryableJobError(new AppError('invalid', 'orders.unknown_item', '...')); // false
 */
export function isRetryableJobError(error: unknown): boolean {
  if (!isAppError(error)) return true;
  const { kind } = error;
  switch (kind) {
    case 'unavailable':
    case 'rate_limited':
      return true;
    case 'invalid':
    case 'unauthenticated':
    case 'forbidden':
    case 'not_found':
    case 'method_not_allowed':
    case 'conflict':
    case 'precondition_failed':
    case 'payload_too_large':
    case 'unsupported_media_type':
    case 'unprocessable':
    // An `internal` AppError is thrown on purpose by code that knows the input cannot be
    // processed (a value that does not decrypt): a retry would fail the same way.
    case 'internal':
      return false;
    default:
      return assertNever(kind);
  }
}

/** What is stored as a failed job's output: enough to triage, nothing from the payload. */
export type JobFailureOutput = { kind?: string; code?: string; name: string; message: string };

/**
 * The failure summary stored with the job (and shown by `listDeadLetters`).
 *
 * @example
 * describeJobFailure(new AppError('invalid', 'orders.unknown_item', 'No item 42'));
 * // { name: 'AppError', kind: 'invalid', code: 'orders.unknown_item', message: 'No item 42' }
 */
export function describeJobFailure(error: unknown): JobFailureOutput {
  if (isAppError(error))
    return { name: error.name, kind: error.kind, code: error.code, message: error.detail };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string'
      ? { name: error.name, code, message: error.message }
      : { name: error.name, message: error.message };
  }
  return { name: 'NonError', message: String(error) };
}

function assertInteger(
  queue: string,
  field: string,
  value: number,
  minimum: number,
  maximum = Number.MAX_SAFE_INTEGER,
): void {
  if (!Number.isInteger(value) || value < minimum || value > maximum)
    throw invalidDefinition(
      queue,
      maximum === Number.MAX_SAFE_INTEGER
        ? `${field} must be an integer >= ${minimum}`
        : `${field} must be an integer from ${minimum} to ${maximum}`,
    );
}

function invalidDefinition(queue: string, detail: string): JobsError {
  return new JobsError('internal', 'jobs.invalid_definition', `Job queue "${queue}": ${detail}`);
}
