import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, inject, it, vi } from 'vitest';
import { createDatabase } from '../db/database.ts';
import { createLogger } from '../observability/logger.ts';
import { tamperWithRow } from '../testing/tamper.ts';
import { createTestDatabase, TEST_DATABASE_SETTINGS, type TestDatabase } from '../testing/test-database.ts';
import { GENESIS_HASH } from './audit.chain.ts';
import { buildAuditEvent, recordCommitted } from './audit.factories.ts';
import { sealAuditEvents, startAuditSealer } from './audit.sealer.ts';
import { recordAuditEvent } from './audit.service.ts';
import { verifyAuditChain } from './audit.verify.ts';

type SealRow = { position: string; event_id: string; prev_hash: string; hash: string };

async function readSeals(testDb: TestDatabase): Promise<SealRow[]> {
  const result = await testDb.database.pool.query<SealRow>(
    // Order by the table's bigint column, not the text alias of the same name.
    'select s.position::text, s.event_id::text, s.prev_hash, s.hash from platform.audit_seals s order by s.position',
  );
  return result.rows;
}

/** A fresh database per test that tampers with the chain or needs an empty one. */
async function withFreshDatabase(work: (testDb: TestDatabase) => Promise<void>): Promise<void> {
  const testDb = await createTestDatabase(inject('keelTestDatabase'), { poolMax: 25 });
  try {
    await work(testDb);
  } finally {
    await testDb.drop();
  }
}

/** Records `count` events with increasing times, seals them, and returns their ids in chain order. */
async function sealedChain(testDb: TestDatabase, count: number): Promise<string[]> {
  const start = Date.UTC(2025, 0, 1);
  const ids = await recordCommitted(
    testDb.database,
    Array.from({ length: count }, (_, index) =>
      buildAuditEvent({ occurredAt: new Date(start + index * 60_000) }),
    ),
  );
  await sealAuditEvents(testDb.database, 5);
  return ids;
}

describe('sealAuditEvents', () => {
  it('chains events in (occurred_at, id) order from the genesis hash, each seal linking to the one before', async () => {
    await withFreshDatabase(async (testDb) => {
      const [third, first, second] = await recordCommitted(testDb.database, [
        buildAuditEvent({ occurredAt: new Date('2025-01-03T00:00:00Z') }),
        buildAuditEvent({ occurredAt: new Date('2025-01-01T00:00:00Z') }),
        buildAuditEvent({ occurredAt: new Date('2025-01-02T00:00:00Z') }),
      ]);
      expect(await sealAuditEvents(testDb.database, 100)).toEqual({
        sealed: 3,
        orphaned: 0,
        wasLockBusy: false,
      });
      const seals = await readSeals(testDb);
      expect(seals.map((seal) => [seal.position, seal.event_id])).toEqual([
        ['1', first],
        ['2', second],
        ['3', third],
      ]);
      expect(seals[0]?.prev_hash).toBe(GENESIS_HASH);
      expect(seals[1]?.prev_hash).toBe(seals[0]?.hash);
      expect(seals[2]?.prev_hash).toBe(seals[1]?.hash);
      expect(await sealAuditEvents(testDb.database, 100)).toMatchObject({ sealed: 0 });
    });
  });

  it('seals an event that commits late in a later batch, after events that occurred after it', async () => {
    await withFreshDatabase(async (testDb) => {
      const slow = await testDb.database.pool.connect();
      try {
        await slow.query('begin');
        const early = await slow.query<{ id: string }>(
          `insert into platform.audit_events (occurred_at, actor_type, action, resource_type, outcome)
           values ('2025-01-01T00:00:00Z', 'system', 'tests.slow_commit', 'test', 'success') returning id::text`,
        );
        const [later] = await recordCommitted(testDb.database, [
          buildAuditEvent({ occurredAt: new Date('2025-01-02T00:00:00Z') }),
        ]);
        expect(await sealAuditEvents(testDb.database, 100)).toMatchObject({ sealed: 1 });
        await slow.query('commit');
        expect(await sealAuditEvents(testDb.database, 100)).toMatchObject({ sealed: 1 });
        const seals = await readSeals(testDb);
        expect(seals.map((seal) => seal.event_id)).toEqual([later, early.rows[0]?.id]);
      } finally {
        slow.release();
      }
      expect(await verifyAuditChain(testDb.database)).toMatchObject({ ok: true, sealed: 2, unsealed: 0 });
    });
  });

  it('builds one gap-free chain sealing every event exactly once under 20 concurrent writers and 2 concurrent sealers', async () => {
    await withFreshDatabase(async (testDb) => {
      let isWriting = true;
      const sealedByLoops: number[] = [];
      const sealerLoop = async () => {
        let sealed = 0;
        while (isWriting) sealed += (await sealAuditEvents(testDb.database, 7)).sealed;
        sealedByLoops.push(sealed);
      };
      const writer = (writerIndex: number) =>
        testDb.database.typed<unknown>().transaction(async (trx) => {
          for (let index = 0; index < 10; index += 1) {
            await recordAuditEvent(
              trx,
              buildAuditEvent({ occurredAt: undefined, actorId: `writer-${writerIndex}` }),
            );
          }
          // Commit in an order unrelated to the ids taken.
          await sql`select pg_sleep(${(writerIndex % 4) * 0.01})`.execute(trx);
        });
      const writing = Promise.all(Array.from({ length: 20 }, (_, index) => writer(index))).finally(() => {
        isWriting = false;
      });
      await Promise.all([writing, sealerLoop(), sealerLoop()]);
      const [first, second] = await Promise.all([
        sealAuditEvents(testDb.database, 7),
        sealAuditEvents(testDb.database, 7),
      ]);
      const drained = await sealAuditEvents(testDb.database, 7);

      const totalSealed =
        sealedByLoops.reduce((sum, value) => sum + value, 0) +
        (first?.sealed ?? 0) +
        (second?.sealed ?? 0) +
        drained.sealed;
      expect(totalSealed).toBe(200);
      const stats = await testDb.database.pool.query<{
        seals: string;
        distinct_events: string;
        min_position: string;
        max_position: string;
        unsealed: string;
      }>(`
        select
          (select count(*) from platform.audit_seals) as seals,
          (select count(distinct (event_id, occurred_at)) from platform.audit_seals) as distinct_events,
          (select min(position) from platform.audit_seals) as min_position,
          (select max(position) from platform.audit_seals) as max_position,
          (select count(*) from platform.audit_events e where not exists (
            select 1 from platform.audit_seals s where s.event_id = e.id and s.occurred_at = e.occurred_at
          )) as unsealed`);
      expect(stats.rows[0]).toEqual({
        seals: '200',
        distinct_events: '200',
        min_position: '1',
        max_position: '200',
        unsealed: '0',
      });
      expect(await verifyAuditChain(testDb.database, { batchSize: 33 })).toMatchObject({
        ok: true,
        sealed: 200,
        unsealed: 0,
      });
    });
  });

  it('drops a queue entry whose event vanished before sealing and reports it as orphaned', async () => {
    await withFreshDatabase(async (testDb) => {
      const [kept, vanished] = await recordCommitted(testDb.database, [buildAuditEvent(), buildAuditEvent()]);
      await tamperWithRow(testDb, 'delete from platform.audit_events where id = $1', [vanished]);
      expect(await sealAuditEvents(testDb.database, 100)).toEqual({
        sealed: 1,
        orphaned: 1,
        wasLockBusy: false,
      });
      expect((await readSeals(testDb)).map((seal) => seal.event_id)).toEqual([kept]);
      expect(await verifyAuditChain(testDb.database)).toMatchObject({ ok: true, sealed: 1, unsealed: 0 });
    });
  });
});

describe('startAuditSealer', () => {
  it('seals recorded events in the background until stopped', async () => {
    await withFreshDatabase(async (testDb) => {
      const sealer = startAuditSealer({
        database: testDb.database,
        intervalMs: 20,
        logger: createLogger({ level: 'silent' }),
      });
      try {
        await recordCommitted(testDb.database, [buildAuditEvent(), buildAuditEvent()]);
        await vi.waitFor(async () => expect(await readSeals(testDb)).toHaveLength(2), { timeout: 10_000 });
      } finally {
        sealer.stop();
      }
    });
  });
});

describe('verifyAuditChain', () => {
  it('reports an empty chain as intact with no head', async () => {
    await withFreshDatabase(async (testDb) => {
      expect(await verifyAuditChain(testDb.database)).toEqual({
        ok: true,
        sealed: 0,
        unsealed: 0,
        head: null,
      });
    });
  });

  it('reports an intact chain as ok with its sealed and unsealed counts and its head', async () => {
    await withFreshDatabase(async (testDb) => {
      await sealedChain(testDb, 12);
      await recordCommitted(testDb.database, [buildAuditEvent(), buildAuditEvent()]);
      const seals = await readSeals(testDb);
      expect(await verifyAuditChain(testDb.database, { batchSize: 5 })).toEqual({
        ok: true,
        sealed: 12,
        unsealed: 2,
        head: { position: 12, hash: seals[11]?.hash },
      });
    });
  });

  it('recomputes the same hashes from sessions with another time zone and date style', async () => {
    await withFreshDatabase(async (testDb) => {
      await sealedChain(testDb, 3);
      // New sessions of this database only; the pool's open sessions keep the server default.
      await testDb.database.pool.query(
        `alter database ${testDb.name} set timezone to 'Pacific/Chatham'; alter database ${testDb.name} set datestyle to 'SQL, DMY'`,
      );
      const elsewhere = createDatabase(
        { ...TEST_DATABASE_SETTINGS, url: testDb.url },
        createLogger({ level: 'silent' }),
      );
      try {
        const zone = await elsewhere.pool.query<{ zone: string }>('select current_setting($1) as zone', [
          'TimeZone',
        ]);
        expect(zone.rows[0]?.zone).toBe('Pacific/Chatham');
        expect(await verifyAuditChain(elsewhere)).toMatchObject({ ok: true, sealed: 3 });
        await recordCommitted(elsewhere, [buildAuditEvent({ occurredAt: undefined, ip: '2001:db8::9' })]);
        await sealAuditEvents(elsewhere, 10);
      } finally {
        await elsewhere.close();
      }
      expect(await verifyAuditChain(testDb.database)).toMatchObject({ ok: true, sealed: 4 });
    });
  });

  it('finds an action edited behind the trigger and names the first broken link', async () => {
    await withFreshDatabase(async (testDb) => {
      const ids = await sealedChain(testDb, 12);
      await tamperWithRow(
        testDb,
        `update platform.audit_events set action = 'users.nothing_happened' where id = $1`,
        [ids[7]],
      );
      expect(await verifyAuditChain(testDb.database, { batchSize: 5 })).toEqual({
        ok: false,
        firstBrokenPosition: 8,
        eventId: ids[7],
        reason: 'hash_mismatch',
      });
    });
  });

  it('finds changes edited behind the trigger', async () => {
    await withFreshDatabase(async (testDb) => {
      const ids = await sealedChain(testDb, 6);
      await tamperWithRow(
        testDb,
        `update platform.audit_events set changes = '{"role": {"from": "user", "to": "user"}}' where id = $1`,
        [ids[2]],
      );
      expect(await verifyAuditChain(testDb.database)).toMatchObject({
        ok: false,
        firstBrokenPosition: 3,
        eventId: ids[2],
        reason: 'hash_mismatch',
      });
    });
  });

  it('finds a rewritten occurred_at, even though the row moved to another partition', async () => {
    await withFreshDatabase(async (testDb) => {
      const ids = await sealedChain(testDb, 4);
      await tamperWithRow(testDb, `update platform.audit_events set occurred_at = now() where id = $1`, [
        ids[1],
      ]);
      expect(await verifyAuditChain(testDb.database)).toMatchObject({
        ok: false,
        firstBrokenPosition: 2,
        eventId: ids[1],
        reason: 'hash_mismatch',
      });
    });
  });

  it('reports the earliest link when several were edited', async () => {
    await withFreshDatabase(async (testDb) => {
      const ids = await sealedChain(testDb, 10);
      await tamperWithRow(testDb, `update platform.audit_events set outcome = 'failure' where id = $1`, [
        ids[8],
      ]);
      await tamperWithRow(testDb, `update platform.audit_events set ip = '203.0.113.9' where id = $1`, [
        ids[3],
      ]);
      expect(await verifyAuditChain(testDb.database, { batchSize: 3 })).toMatchObject({
        ok: false,
        firstBrokenPosition: 4,
        eventId: ids[3],
      });
    });
  });

  it('reports a deleted sealed event as event_missing', async () => {
    await withFreshDatabase(async (testDb) => {
      const ids = await sealedChain(testDb, 7);
      await tamperWithRow(testDb, 'delete from platform.audit_events where id = $1', [ids[4]]);
      expect(await verifyAuditChain(testDb.database)).toEqual({
        ok: false,
        firstBrokenPosition: 5,
        eventId: ids[4],
        reason: 'event_missing',
      });
    });
  });

  it('reports a removed seal as prev_hash_mismatch at the seal after it', async () => {
    await withFreshDatabase(async (testDb) => {
      const ids = await sealedChain(testDb, 7);
      await tamperWithRow(testDb, 'delete from platform.audit_seals where position = 3');
      expect(await verifyAuditChain(testDb.database)).toEqual({
        ok: false,
        firstBrokenPosition: 4,
        eventId: ids[3],
        reason: 'prev_hash_mismatch',
      });
    });
  });

  it('reports a rewritten seal hash as hash_mismatch at that seal', async () => {
    await withFreshDatabase(async (testDb) => {
      const ids = await sealedChain(testDb, 5);
      await tamperWithRow(
        testDb,
        `update platform.audit_seals set hash = repeat('a', 64) where position = 2`,
      );
      expect(await verifyAuditChain(testDb.database)).toEqual({
        ok: false,
        firstBrokenPosition: 2,
        eventId: ids[1],
        reason: 'hash_mismatch',
      });
    });
  });

  it('keeps verifying a chain with events recorded by unrelated writers in between', async () => {
    await withFreshDatabase(async (testDb) => {
      const actorId = `actor-${randomUUID()}`;
      await sealedChain(testDb, 3);
      await recordCommitted(testDb.database, [buildAuditEvent({ actorId, occurredAt: undefined })]);
      await sealAuditEvents(testDb.database, 2);
      await sealedChain(testDb, 3);
      expect(await verifyAuditChain(testDb.database, { batchSize: 2 })).toMatchObject({
        ok: true,
        sealed: 7,
      });
    });
  });
});
