export {
  type RateLimitErrorCode,
  type RateLimitSnapshot,
  rateLimitExceeded,
  rateLimitHeaders,
  rateLimitUnavailable,
} from './rate-limit.errors.ts';
export {
  installRateLimiting,
  type RateLimiters,
  type RateLimitHook,
  type RateLimitingOptions,
  type RateLimitPolicy,
  type RateLimitSettings,
  rateLimitSettingsFrom,
} from './rate-limit.ts';
