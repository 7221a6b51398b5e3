import type { IdentityDb } from '../identity.tables.ts';

export type ApiKeyRecord = {
  id: string;
  name: string;
  permissions: string[];
  createdBy: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
};

const COLUMNS = [
  'id',
  'name',
  'permissions',
  'created_by',
  'created_at',
  'expires_at',
  'revoked_at',
  'last_used_at',
] as const;

function toApiKey(row: {
  id: string;
  name: string;
  permissions: string[];
  created_by: string | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    permissions: row.permissions,
    createdBy: row.created_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

export async function insertApiKey(
  db: IdentityDb,
  key: {
    id: string;
    name: string;
    secretHash: Buffer;
    permissions: readonly string[];
    createdBy: string;
    now: Date;
    expiresAt: Date | null;
  },
): Promise<ApiKeyRecord> {
  const row = await db
    .insertInto('platform.api_keys')
    .values({
      id: key.id,
      name: key.name,
      secret_hash: key.secretHash,
      permissions: [...key.permissions],
      created_by: key.createdBy,
      created_at: key.now,
      expires_at: key.expiresAt,
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return toApiKey(row);
}

export async function findApiKeys(
  db: IdentityDb,
  afterId: string | undefined,
  limit: number,
): Promise<ApiKeyRecord[]> {
  let query = db.selectFrom('platform.api_keys').select(COLUMNS).orderBy('id').limit(limit);
  if (afterId !== undefined) query = query.where('id', '>', afterId);
  return (await query.execute()).map(toApiKey);
}

export async function revokeApiKey(db: IdentityDb, id: string, now: Date): Promise<ApiKeyRecord | undefined> {
  const row = await db
    .updateTable('platform.api_keys')
    .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(now)) }))
    .where('id', '=', id)
    .returning(COLUMNS)
    .executeTakeFirst();
  return row ? toApiKey(row) : undefined;
}

export type ApiKeyCredential = {
  secretHash: Buffer;
  permissions: string[];
  expiresAt: Date | null;
  revokedAt: Date | null;
};

export async function findApiKeyCredential(
  db: IdentityDb,
  id: string,
): Promise<ApiKeyCredential | undefined> {
  const row = await db
    .selectFrom('platform.api_keys')
    .select(['secret_hash', 'permissions', 'expires_at', 'revoked_at'])
    .where('id', '=', id)
    .executeTakeFirst();
  return row
    ? {
        secretHash: row.secret_hash,
        permissions: row.permissions,
        expiresAt: row.expires_at,
        revokedAt: row.revoked_at,
      }
    : undefined;
}

/** Stamps `last_used_at`; called after a successful check on a cache miss, so once per key per cache period. */
export async function touchApiKey(db: IdentityDb, id: string, now: Date): Promise<void> {
  await db.updateTable('platform.api_keys').set({ last_used_at: now }).where('id', '=', id).execute();
}
