import type { FastifyRequest } from 'fastify';
import type { Authenticator } from '../http/index.ts';
import type { ServiceRoles } from '../rbac/index.ts';
import {
  type AccountService,
  createAccountService,
  PLATFORM_ADMIN_ROLE,
} from './accounts/account.service.ts';
import { type ApiKeyService, createApiKeyService } from './api-keys/api-key.service.ts';
import { createAuthenticator } from './authenticator.ts';
import type { IdentityDependencies, RequestOrigin } from './identity.context.ts';
import { createSessionService, type SessionService } from './sessions/session.service.ts';
import type { SigningKeySet } from './tokens/index.ts';

/** The platform's own roles: administration always needs MFA. */
export const PLATFORM_ROLES: ServiceRoles = {
  definitions: [
    {
      name: PLATFORM_ADMIN_ROLE,
      description:
        'Manages accounts, roles and API keys; reads and verifies the audit trail; replays dead-lettered events and jobs',
      permissions: [
        'platform:manage_users',
        'platform:manage_api_keys',
        'platform:read_audit',
        'platform:operate_background',
      ],
      requiresMfa: true,
    },
  ],
};

export type Identity = {
  accounts: AccountService;
  sessions: SessionService;
  apiKeys: ApiKeyService;
  authenticate: Authenticator;
  jwks: SigningKeySet['jwks'];
  accessTokenTtlSeconds: number;
  dependencies: IdentityDependencies;
};

/**
 * The identity core's composition root: accounts, sessions, API keys and the
 * authenticator the HTTP access hook calls.
 *
 * @example
 * const identity = createIdentity({ ...deps, signingKeys, accessTokenTtlSeconds: 900 });
 * const app = await createHttpApp({ ..., authenticate: identity.authenticate });
 */
export function createIdentity(
  deps: IdentityDependencies & { signingKeys: SigningKeySet; accessTokenTtlSeconds: number },
): Identity {
  const accounts = createAccountService(deps);
  const sessions = createSessionService(deps);
  const apiKeys = createApiKeyService(deps);
  return {
    accounts,
    sessions,
    apiKeys,
    authenticate: createAuthenticator({
      accessTokens: deps.accessTokens,
      sessions,
      apiKeys,
      roles: deps.roles,
    }),
    jwks: () => deps.signingKeys.jwks(),
    accessTokenTtlSeconds: deps.accessTokenTtlSeconds,
    dependencies: deps,
  };
}

export function originOf(request: FastifyRequest): RequestOrigin {
  return { requestId: request.id, ip: request.ip ?? null, userAgent: request.headers['user-agent'] ?? null };
}
