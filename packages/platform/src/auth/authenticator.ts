import type { FastifyRequest } from 'fastify';
import type { Authenticator, Principal } from '../http/index.ts';
import type { RoleRegistry } from '../rbac/index.ts';
import type { ApiKeyService } from './api-keys/api-key.service.ts';
import { API_KEY_PREFIX } from './api-keys/api-key.service.ts';
import { sessionRevoked } from './auth.errors.ts';
import type { SessionService } from './sessions/session.service.ts';
import type { AccessTokens } from './tokens/index.ts';

const BEARER = /^Bearer +(\S+)$/i;

/**
 * Turns `Authorization: Bearer …` into a principal: an API key (`keel_…`) or
 * an access token whose session is still live. No header → no principal
 * (the access hook answers 401 for routes that need one); a header that does
 * not verify is a 401 on any route that needs credentials. Public routes never
 * look at it, so health probes with a stale header keep working.
 *
 * @example
 * const app = await createHttpApp({ ..., authenticate: createAuthenticator({ accessTokens, sessions, apiKeys, roles }) });
 */
export function createAuthenticator(deps: {
  accessTokens: AccessTokens;
  sessions: Pick<SessionService, 'sessionState'>;
  apiKeys: Pick<ApiKeyService, 'authenticateApiKey'>;
  roles: RoleRegistry;
}): Authenticator {
  // Permission sets per distinct role list: a handful of combinations cover
  // every caller, so each request skips rebuilding its set.
  const permissionCache = new Map<string, ReadonlySet<string>>();
  const permissionsFor = (roles: readonly string[], isMfaAuthenticated: boolean): ReadonlySet<string> => {
    const key = `${isMfaAuthenticated ? 'mfa' : 'pwd'}|${roles.join(',')}`;
    let permissions = permissionCache.get(key);
    if (permissions === undefined) {
      permissions = deps.roles.permissionsFor(roles, { isMfaAuthenticated });
      if (permissionCache.size < 1000) permissionCache.set(key, permissions);
    }
    return permissions;
  };

  return async (request: FastifyRequest): Promise<Principal | undefined> => {
    const header = request.headers.authorization;
    if (header === undefined) return undefined;
    const credential = BEARER.exec(header)?.[1];
    if (credential === undefined) return undefined;
    if (credential.startsWith(API_KEY_PREFIX)) return deps.apiKeys.authenticateApiKey(credential);
    const claims = await deps.accessTokens.verify(credential);
    const state = await deps.sessions.sessionState(claims.sessionId);
    if (state === undefined || !state.isActive || state.accountId !== claims.subject) throw sessionRevoked();
    return {
      id: claims.subject,
      kind: 'user',
      permissions: permissionsFor(state.roles, state.isMfaAuthenticated),
      roles: state.roles,
      sessionId: claims.sessionId,
      isMfaAuthenticated: state.isMfaAuthenticated,
    };
  };
}
