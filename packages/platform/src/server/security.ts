import type { CachedApiKey, IdentitySettings } from '../auth/identity.context.ts';
import { createIdentity, type Identity, PLATFORM_ROLES } from '../auth/identity.ts';
import { createTotp } from '../auth/mfa/index.ts';
import { createPasswordHasher } from '../auth/passwords/index.ts';
import type { SessionState } from '../auth/sessions/session.repository.ts';
import { createMemoryTtlCache, createRedisTtlCache } from '../auth/sessions/session-state-cache.ts';
import { createAccessTokens, loadOrCreateSigningKeys } from '../auth/tokens/index.ts';
import type { PlatformConfig } from '../config/index.ts';
import { type FieldCrypto, loadFieldCrypto } from '../crypto/index.ts';
import type { Database } from '../db/index.ts';
import type { Clock, IdGenerator, ServiceModule } from '../module/index.ts';
import { createLogNotifier, type Notifier } from '../notifier/index.ts';
import type { Logger } from '../observability/index.ts';
import { createRoleRegistry, type RoleRegistry } from '../rbac/index.ts';
import { closeRedisClient, createRedisClient, type RedisClient, waitForRedisReady } from '../redis/index.ts';

/** Everything security-related a Keel process holds: identity, keys, the shared Redis. */
export type PlatformSecurity = {
  identity: Identity;
  roles: RoleRegistry;
  fieldCrypto: FieldCrypto;
  redis: RedisClient | undefined;
  /** The adapter every message to a person goes through (the log notifier unless one is passed). */
  notifier: Notifier;
  close: () => Promise<void>;
};

export function identitySettingsFrom(config: PlatformConfig): IdentitySettings {
  const hour = 3_600_000;
  return {
    refreshIdleTtlMs: config.AUTH_REFRESH_IDLE_TTL_HOURS * hour,
    refreshAbsoluteTtlMs: config.AUTH_REFRESH_ABSOLUTE_TTL_HOURS * hour,
    sessionCacheTtlMs: config.AUTH_SESSION_CACHE_TTL_MS,
    mfaChallengeTtlMs: config.AUTH_MFA_CHALLENGE_TTL_SECONDS * 1000,
    mfaMaxAttempts: config.AUTH_MFA_MAX_ATTEMPTS,
    passwordResetTtlMs: config.AUTH_PASSWORD_RESET_TTL_MINUTES * 60_000,
    lockout: {
      threshold: config.AUTH_LOCKOUT_THRESHOLD,
      baseSeconds: config.AUTH_LOCKOUT_BASE_SECONDS,
      maxSeconds: config.AUTH_LOCKOUT_MAX_SECONDS,
    },
    mfaIssuer: config.AUTH_ISSUER === 'keel' ? 'Keel' : config.AUTH_ISSUER,
  };
}

/**
 * Builds the security side of a process from configuration: signing and
 * encryption keys (generated under KEEL_DATA_DIR outside production), the
 * role registry from the mounted modules, caches (Redis when REDIS_URL is
 * set) and the identity core. Production without keys fails here, at start.
 */
export async function openPlatformSecurity(options: {
  config: PlatformConfig;
  database: Database;
  logger: Logger;
  clock: Clock;
  ids: IdGenerator;
  modules: readonly ServiceModule[];
  notifier?: Notifier;
}): Promise<PlatformSecurity> {
  const { config, logger, clock, ids } = options;
  const allowGenerate = config.NODE_ENV !== 'production';
  const signingKeys = await loadOrCreateSigningKeys({
    ...(config.AUTH_SIGNING_KEYS === undefined ? {} : { configured: config.AUTH_SIGNING_KEYS }),
    dataDirectory: config.KEEL_DATA_DIR,
    allowGenerate,
  });
  const fieldCrypto = loadFieldCrypto({
    ...(config.KEEL_ENCRYPTION_KEYS === undefined ? {} : { encryptionKeys: config.KEEL_ENCRYPTION_KEYS }),
    ...(config.KEEL_BLIND_INDEX_KEY === undefined ? {} : { blindIndexKey: config.KEEL_BLIND_INDEX_KEY }),
    dataDirectory: config.KEEL_DATA_DIR,
    allowGenerate,
  });
  const roles = createRoleRegistry([
    { service: 'platform', roles: PLATFORM_ROLES },
    ...options.modules.flatMap((module) =>
      module.roles ? [{ service: module.name, roles: module.roles }] : [],
    ),
  ]);
  const redis = config.REDIS_URL
    ? createRedisClient({ url: config.REDIS_URL, logger, name: 'keel' })
    : undefined;
  if (redis) {
    // Commands fail until the first connection is up. A Redis that is down at
    // start is not fatal: sessions fall back to the database and the auth
    // limits answer 503 until it returns.
    await waitForRedisReady(redis, { timeoutMs: 5000 }).catch(() =>
      logger.warn('Redis is not reachable at start; continuing without it until it is'),
    );
  }
  const sessionCache = redis
    ? createRedisTtlCache<SessionState>({ redis, prefix: 'keel:auth:', logger })
    : createMemoryTtlCache<SessionState>({ maxEntries: 100_000 });
  const apiKeyCache = redis
    ? createRedisTtlCache<CachedApiKey>({ redis, prefix: 'keel:auth:', logger })
    : createMemoryTtlCache<CachedApiKey>({ maxEntries: 10_000 });
  const notifier =
    options.notifier ?? createLogNotifier({ logger, isRevealingSecrets: config.NODE_ENV === 'development' });
  const identity = createIdentity({
    database: options.database,
    clock,
    ids,
    logger: logger.child({ component: 'identity' }),
    roles,
    passwords: createPasswordHasher(),
    accessTokens: createAccessTokens({
      keys: signingKeys,
      issuer: config.AUTH_ISSUER,
      audience: config.AUTH_AUDIENCE,
      ttlSeconds: config.AUTH_ACCESS_TOKEN_TTL_SECONDS,
      clock,
      ids,
    }),
    totp: createTotp({ clock }),
    encryption: fieldCrypto.encryption,
    sessionCache,
    apiKeyCache,
    notifier,
    settings: identitySettingsFrom(config),
    signingKeys,
    accessTokenTtlSeconds: config.AUTH_ACCESS_TOKEN_TTL_SECONDS,
  });
  return {
    identity,
    roles,
    fieldCrypto,
    redis,
    notifier,
    close: async () => {
      if (redis) await closeRedisClient(redis);
    },
  };
}
