import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { AppError } from '../errors/index.ts';

/**
 * Who may call a route. `public`: anyone; `authenticated`: any verified
 * caller; any other value is a permission (`users:read`) the caller must hold.
 */
export type AccessRule = 'public' | 'authenticated' | `${string}:${string}`;

/** The verified caller. Services check permissions, never role names. */
export type Principal = {
  /** The account id for a user, the key id for an API key. */
  id: string;
  kind: 'user' | 'api_key';
  permissions: ReadonlySet<string>;
  /** Roles granted to the account (none for an API key); for display and audit, never for checks. */
  roles: readonly string[];
  /** The session the access token belongs to (users only). */
  sessionId?: string;
  /** Whether the session passed a second factor. */
  isMfaAuthenticated: boolean;
};

/** Turns request credentials into a principal; `undefined` when none were presented. */
export type Authenticator = (request: FastifyRequest) => Promise<Principal | undefined>;

export class MissingAccessRuleError extends Error {
  constructor(route: string) {
    super(
      `Route ${route} declares no access rule; add config.access ('public', 'authenticated' or a permission)`,
    );
    this.name = 'MissingAccessRuleError';
  }
}

/**
 * Deny by default: refuses to register a route without `config.access`, and
 * checks the rule before any handler (or body parsing) runs.
 */
export function enforceAccessRules(app: FastifyInstance, authenticate: Authenticator | undefined): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const access = (route.config as { access?: AccessRule } | undefined)?.access;
    // Fastify adds HEAD twins of GET routes; they inherit the GET route's config.
    if (access === undefined) throw new MissingAccessRuleError(`${String(route.method)} ${route.url}`);
  });

  // Credentials are checked before the body is read, but the refusal is raised
  // one step later (preParsing): in between, route-level onRequest hooks run,
  // so the rate limiter counts refused callers too (by IP, or by principal
  // for a 403) and cannot be bypassed by sending bad credentials.
  const refusals = new WeakMap<FastifyRequest, AppError>();
  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access;
    // Unmatched requests reach the 404/405 handler, which needs no rule.
    if (access === undefined || access === 'public') return;
    let principal: Principal | undefined;
    try {
      principal = authenticate ? await authenticate(request) : undefined;
    } catch (error) {
      // A dependency failure (503) answers at once; bad credentials wait for the limiter.
      if (error instanceof AppError && error.kind === 'unauthenticated') {
        refusals.set(request, error);
        return;
      }
      throw error;
    }
    if (principal === undefined) {
      refusals.set(
        request,
        new AppError('unauthenticated', 'auth.unauthenticated', 'This operation needs valid credentials', {
          headers: { 'www-authenticate': 'Bearer' },
        }),
      );
      return;
    }
    request.principal = principal;
    if (access !== 'authenticated' && !principal.permissions.has(access)) {
      refusals.set(
        request,
        new AppError('forbidden', 'auth.forbidden', 'You are not allowed to perform this operation'),
      );
    }
  });
  // An async preParsing hook must hand the payload stream on, or the body is lost.
  app.addHook('preParsing', async (request, _reply, payload) => {
    const refusal = refusals.get(request);
    if (refusal !== undefined) throw refusal;
    return payload;
  });
}
