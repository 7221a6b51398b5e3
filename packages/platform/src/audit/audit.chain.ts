import { createHash } from 'node:crypto';

/**
 * An audit event exactly as the database stores it, every column in the
 * textual form Postgres prints (see `SEALED_COLUMNS` in audit.repository.ts):
 * `occurred_at` in UTC with microseconds, `ip` with its netmask, `changes` in
 * jsonb's normalised text. Hashing the database's own text, not values parsed
 * into JavaScript, keeps a recomputed hash stable: a Date would lose the
 * microseconds and a JSON number could lose digits.
 */
export type SealedEventColumns = {
  id: string;
  occurred_at: string;
  actor_type: string;
  actor_id: string | null;
  action: string;
  resource_type: string;
  resource_id: string | null;
  outcome: string;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  changes: string | null;
};

/** The `prev_hash` of the first seal: 32 zero bytes. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * hash = SHA-256(prev_hash bytes ‖ UTF-8 canonical JSON of the event's columns).
 * Changing this function, or the columns it covers, invalidates every existing
 * chain: a new format needs a version on the seal, not an edit here.
 */
export function computeSealHash(prevHash: string, event: SealedEventColumns): string {
  return createHash('sha256')
    .update(Buffer.from(prevHash, 'hex'))
    .update(canonicalEventJson(event), 'utf8')
    .digest('hex');
}

/** Sorted keys, no whitespace, every value a JSON string or null. */
export function canonicalEventJson(event: SealedEventColumns): string {
  const columns: Record<string, string | null> = {
    id: event.id,
    occurred_at: event.occurred_at,
    actor_type: event.actor_type,
    actor_id: event.actor_id,
    action: event.action,
    resource_type: event.resource_type,
    resource_id: event.resource_id,
    outcome: event.outcome,
    request_id: event.request_id,
    ip: event.ip,
    user_agent: event.user_agent,
    changes: event.changes,
  };
  const keys = Object.keys(columns).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${JSON.stringify(columns[key] ?? null)}`).join(',')}}`;
}
