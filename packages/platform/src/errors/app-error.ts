/**
 * The closed set of failure kinds. Business code picks a kind; only the HTTP
 * layer (errors/problem.ts) knows which status each one becomes.
 *
 * STYLE.md lists eight kinds; Keel adds the few HTTP semantics that a client
 * must be able to tell apart (405, 412, 413, 415, 422) instead of hiding them
 * behind a status override that business code could misuse.
 */
export type ErrorKind =
  | 'invalid'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'precondition_failed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'unprocessable'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

/** One field-level problem, addressed by a JSON pointer into the request (`/body/email`). */
export type FieldError = { pointer: string; detail: string };

export type AppErrorOptions = {
  /** Extra, typed members rendered into the problem document (e.g. `location`). */
  extensions?: Record<string, unknown>;
  /** Field-level problems, rendered as `errors`. */
  errors?: FieldError[];
  /** Seconds a client should wait before retrying; rendered as `Retry-After`. */
  retryAfterSeconds?: number;
  /** Extra response headers, e.g. `Allow` for 405. */
  headers?: Record<string, string>;
  cause?: unknown;
};

/**
 * An expected failure with a stable, machine-readable `code`.
 *
 * @example
 * throw new AppError('conflict', 'users.email_taken', 'A user with this email already exists', {
 *   extensions: { location: `/user/${existing.id}` },
 * });
 */
export class AppError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly detail: string;
  readonly extensions: Record<string, unknown>;
  readonly errors: FieldError[] | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly headers: Record<string, string>;

  constructor(kind: ErrorKind, code: string, detail: string, options: AppErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.kind = kind;
    this.code = code;
    this.detail = detail;
    this.extensions = options.extensions ?? {};
    this.errors = options.errors;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.headers = options.headers ?? {};
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/** Ends every `switch` over a closed union, so adding a member is a compile error until handled. */
export function assertNever(value: never): never {
  throw new Error(`Unhandled case: ${JSON.stringify(value)}`);
}
