import type { AccessRule, Principal } from './access.ts';
import type { ErrorSummary } from './problem-handler.ts';

/** Per-route opt-in to Idempotency-Key handling (see ../idempotency). */
export type IdempotencyRouteConfig = { required: boolean };

// Platform decorations are typed once, here.
declare module 'fastify' {
  interface FastifyContextConfig {
    access?: AccessRule;
    idempotency?: IdempotencyRouteConfig;
    /** The service module that owns the route; labels its metrics. */
    service?: string;
  }
  interface FastifyRequest {
    principal?: Principal;
    errorSummary?: ErrorSummary;
  }
}
