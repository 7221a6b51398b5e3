import { AppError } from '../errors/index.ts';

/** Every code the rate limiter answers with. */
export type RateLimitErrorCode =
  /** The caller used up a limit; `Retry-After` says when the window resets. */
  | 'rate_limit.exceeded'
  /** An auth limit could not be checked (its store, Redis, is unreachable); auth routes fail closed. */
  | 'rate_limit.unavailable';

/** Draft IETF RateLimit header fields, as `@fastify/rate-limit` names them with `enableDraftSpec`. */
export type RateLimitSnapshot = { limit: number; remaining: number; resetSeconds: number };

/**
 * 429 with `Retry-After` and the `RateLimit-*` fields of the limit that was hit.
 *
 * @example
 * throw rateLimitExceeded({ limit: 10, remaining: 0, resetSeconds: 42 });
 */
export function rateLimitExceeded(snapshot: RateLimitSnapshot): AppError {
  return new AppError(
    'rate_limited',
    'rate_limit.exceeded',
    `Too many requests; retry in ${snapshot.resetSeconds} seconds`,
    { retryAfterSeconds: snapshot.resetSeconds, headers: rateLimitHeaders(snapshot) },
  );
}

/**
 * 503 when an auth limit cannot be checked: letting sign-in attempts through
 * unlimited during a Redis outage would open the door to credential stuffing.
 *
 * @example
 * throw rateLimitUnavailable();
 */
export function rateLimitUnavailable(): AppError {
  return new AppError(
    'unavailable',
    'rate_limit.unavailable',
    'This operation is briefly unavailable; try again shortly',
    { retryAfterSeconds: 5 },
  );
}

export function rateLimitHeaders(snapshot: RateLimitSnapshot): Record<string, string> {
  return {
    'ratelimit-limit': String(snapshot.limit),
    'ratelimit-remaining': String(snapshot.remaining),
    'ratelimit-reset': String(snapshot.resetSeconds),
  };
}
