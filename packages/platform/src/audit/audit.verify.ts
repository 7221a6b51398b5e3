import type { Database } from '../db/database.ts';
import { computeSealHash, GENESIS_HASH } from './audit.chain.ts';
import {
  type AuditTables,
  type ChainHead,
  countPendingSeals,
  findSealedColumnsById,
  findSealsAfter,
} from './audit.repository.ts';

/**
 * Why a link is broken:
 * - `hash_mismatch`: the event row (or the seal's hash) changed after sealing;
 * - `event_missing`: the sealed event row is gone;
 * - `prev_hash_mismatch`: the seal does not follow the one before it (a seal
 *   was removed, inserted or reordered).
 */
export type AuditChainBreak = 'hash_mismatch' | 'event_missing' | 'prev_hash_mismatch';

export type AuditChainVerification =
  | {
      ok: true;
      /** Seals checked. */
      sealed: number;
      /** Events still waiting for the sealer. */
      unsealed: number;
      /** The last seal; store it outside the database to detect a truncated chain later. */
      head: ChainHead | null;
    }
  | { ok: false; firstBrokenPosition: number; eventId: string; reason: AuditChainBreak };

export const DEFAULT_VERIFY_BATCH_SIZE = 1000;

/**
 * Walks the chain in position order, `batchSize` seals per query (never the
 * whole table in memory), recomputing each hash from the event row as stored
 * now and the previous seal's hash. Stops at the first broken link.
 *
 * The chain proves that sealed events were not changed, removed or reordered
 * without rewriting every later seal. Removing the newest seals together with
 * their events leaves a shorter chain that still verifies: compare `head`
 * with a copy kept elsewhere (a log line, another system) to catch that.
 *
 * @example
 * const result = await verifyAuditChain(database);
 * if (!result.ok) logger.error(result, 'audit chain broken');
 */
export async function verifyAuditChain(
  database: Database,
  options: { batchSize?: number } = {},
): Promise<AuditChainVerification> {
  const db = database.typed<AuditTables>();
  const batchSize = options.batchSize ?? DEFAULT_VERIFY_BATCH_SIZE;
  let expectedPrevHash = GENESIS_HASH;
  let lastPosition = 0;
  let sealed = 0;
  let head: ChainHead | null = null;
  for (;;) {
    const seals = await db.run((kysely) => findSealsAfter(kysely, lastPosition, batchSize));
    for (const seal of seals) {
      const broken = (reason: AuditChainBreak) =>
        ({ ok: false, firstBrokenPosition: seal.position, eventId: seal.eventId, reason }) as const;
      // Positions start at 1 and have no gaps; a missing one is a removed seal.
      if (seal.prevHash !== expectedPrevHash || seal.position !== lastPosition + 1) {
        return broken('prev_hash_mismatch');
      }
      let columns = seal.columns;
      if (columns === undefined) {
        // No row at the sealed (occurred_at, id): gone, or its time was rewritten.
        columns = await db.run((kysely) => findSealedColumnsById(kysely, seal.eventId));
        if (columns === undefined) return broken('event_missing');
      }
      if (computeSealHash(seal.prevHash, columns) !== seal.hash) return broken('hash_mismatch');
      expectedPrevHash = seal.hash;
      lastPosition = seal.position;
      sealed += 1;
      head = { position: seal.position, hash: seal.hash };
    }
    if (seals.length < batchSize) break;
  }
  const unsealed = await db.run((kysely) => countPendingSeals(kysely));
  return { ok: true, sealed, unsealed, head };
}
