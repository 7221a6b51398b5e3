export { type AccessRule, type Authenticator, MissingAccessRuleError, type Principal } from './access.ts';
export { createHttpApp, type HttpAppOptions, type KeelApp } from './app.ts';
export { formatVersionEtag, parseIfMatchVersion } from './etag.ts';
export type { IdempotencyRouteConfig } from './fastify-types.ts';
export { decodeTimeIdCursor, encodeTimeIdCursor, type TimeIdCursor } from './keyset-cursor.ts';
export { type CheckStatus, type ReadinessCheck, registerPlatformRoutes } from './platform-routes.ts';
export { type ErrorSummary, sendProblem } from './problem-handler.ts';
export { ProblemSchema, problemResponses } from './schemas.ts';
