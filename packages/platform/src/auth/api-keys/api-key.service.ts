import { AppError } from '../../errors/index.ts';
import type { Principal } from '../../http/index.ts';
import { apiKeyNotFound, invalidApiKey, unknownPermission } from '../auth.errors.ts';
import {
  apiKeyCacheKey,
  auditAuthEvent,
  type CachedApiKey,
  type IdentityDependencies,
  identityDb,
  type RequestOrigin,
} from '../identity.context.ts';
import { generateSecretToken, hashSecretToken, isSameHash } from '../secret-token.ts';
import {
  type ApiKeyRecord,
  findApiKeyCredential,
  findApiKeys,
  insertApiKey,
  revokeApiKey,
  touchApiKey,
} from './api-key.repository.ts';

/** `keel_<key id, 32 hex>_<secret, 43 base64url>`: the id finds the row, the secret proves possession. */
const API_KEY_PATTERN = /^keel_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;
export const API_KEY_PREFIX = 'keel_';

export type CreatedApiKey = ApiKeyRecord & { key: string };

export type ApiKeyPage = { apiKeys: ApiKeyRecord[]; nextCursor: string | null };

function toUuid(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;

export function createApiKeyService(deps: IdentityDependencies) {
  const db = identityDb(deps.database);
  const { clock } = deps;

  return {
    /**
     * Creates a scoped key, shown once. Scopes must be permissions some role
     * declares, and never `platform:*`: administration needs a person with MFA.
     */
    async createApiKey(
      actor: { id: string },
      input: { name: string; permissions: readonly string[]; expiresAt?: Date },
      origin: RequestOrigin,
    ): Promise<CreatedApiKey> {
      for (const permission of input.permissions) {
        if (permission.startsWith('platform:') || !deps.roles.permissions.has(permission)) {
          throw unknownPermission(permission);
        }
      }
      if (input.expiresAt !== undefined && input.expiresAt <= clock.now()) {
        throw new AppError('invalid', 'request.invalid', 'expires_at must be in the future', {
          errors: [{ pointer: '/body/expires_at', detail: 'must be in the future' }],
        });
      }
      const id = deps.ids.uuid();
      const secret = generateSecretToken();
      const record = await db.transaction(async (trx) => {
        const created = await insertApiKey(trx, {
          id,
          name: input.name,
          secretHash: hashSecretToken(secret),
          permissions: [...new Set(input.permissions)],
          createdBy: actor.id,
          now: clock.now(),
          expiresAt: input.expiresAt ?? null,
        });
        await auditAuthEvent(trx, origin, {
          actorType: 'user',
          actorId: actor.id,
          action: 'auth.api_key_created',
          resourceType: 'api_key',
          resourceId: id,
          outcome: 'success',
          changes: { name: input.name, permissions: created.permissions },
          occurredAt: clock.now(),
        });
        return created;
      });
      return { ...record, key: `${API_KEY_PREFIX}${id.replaceAll('-', '')}_${secret}` };
    },

    async listApiKeys(query: { limit: number; cursor?: string }): Promise<ApiKeyPage> {
      const rows = await db.run((handle) => findApiKeys(handle, query.cursor, query.limit + 1));
      const page = rows.slice(0, query.limit);
      return { apiKeys: page, nextCursor: rows.length > query.limit ? (page.at(-1)?.id ?? null) : null };
    },

    async revokeApiKey(actor: { id: string }, id: string, origin: RequestOrigin): Promise<ApiKeyRecord> {
      const record = await db.transaction(async (trx) => {
        const revoked = await revokeApiKey(trx, id, clock.now());
        if (revoked === undefined) throw apiKeyNotFound();
        await auditAuthEvent(trx, origin, {
          actorType: 'user',
          actorId: actor.id,
          action: 'auth.api_key_revoked',
          resourceType: 'api_key',
          resourceId: id,
          outcome: 'success',
          occurredAt: clock.now(),
        });
        return revoked;
      });
      await deps.apiKeyCache.delete([apiKeyCacheKey(id)]);
      return record;
    },

    /** The principal for a presented key, or a 401 for anything not a live key. */
    async authenticateApiKey(presented: string): Promise<Principal> {
      const match = API_KEY_PATTERN.exec(presented);
      if (match === null) throw invalidApiKey();
      const [, idHex = '', secret = ''] = match;
      const id = toUuid(idHex);
      const key = apiKeyCacheKey(id);
      let credential = await deps.apiKeyCache.get(key);
      const isCacheMiss = credential === undefined;
      if (credential === undefined) {
        const stored = await db.run((handle) => findApiKeyCredential(handle, id));
        if (stored === undefined) throw invalidApiKey();
        credential = {
          secretHashHex: stored.secretHash.toString('hex'),
          permissions: stored.permissions,
          expiresAt: stored.expiresAt?.toISOString() ?? null,
          isRevoked: stored.revokedAt !== null,
        } satisfies CachedApiKey;
        if (deps.settings.sessionCacheTtlMs > 0) {
          await deps.apiKeyCache.set(key, credential, deps.settings.sessionCacheTtlMs);
        }
      }
      const isExpired = credential.expiresAt !== null && new Date(credential.expiresAt) <= clock.now();
      if (
        credential.isRevoked ||
        isExpired ||
        !isSameHash(hashSecretToken(secret), Buffer.from(credential.secretHashHex, 'hex'))
      ) {
        throw invalidApiKey();
      }
      // Only a proven holder marks the key used, once per cache period.
      if (isCacheMiss) await db.run((handle) => touchApiKey(handle, id, clock.now()));
      return {
        id,
        kind: 'api_key',
        permissions: new Set(credential.permissions),
        roles: [],
        isMfaAuthenticated: false,
      };
    },
  };
}
