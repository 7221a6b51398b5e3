import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database.ts';
import { recordAuditEvent } from './audit.service.ts';
import type { AuditEventInput } from './audit.ts';

/** Test data: a valid audit event with unique ids, overridable field by field. */
export function buildAuditEvent(overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    actorType: 'user',
    actorId: `user-${randomUUID()}`,
    action: 'users.profile_updated',
    resourceType: 'user',
    resourceId: randomUUID(),
    outcome: 'success',
    requestId: `req-${randomUUID()}`,
    ip: '192.0.2.10',
    userAgent: 'vitest',
    changes: { name: { from: 'Ada', to: 'Ada Lovelace' } },
    ...overrides,
  };
}

/** Records events in one committed transaction; returns their ids in order. */
export async function recordCommitted(database: Database, events: AuditEventInput[]): Promise<string[]> {
  return database.typed<unknown>().transaction(async (trx) => {
    const ids: string[] = [];
    for (const event of events) ids.push((await recordAuditEvent(trx, event)).id);
    return ids;
  });
}
