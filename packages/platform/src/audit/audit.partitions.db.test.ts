import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createLogger } from '../observability/logger.ts';
import { createTestDatabase, type TestDatabase } from '../testing/test-database.ts';
import { buildAuditEvent, recordCommitted } from './audit.factories.ts';
import { ensureAuditPartitions, startAuditPartitionMaintenance } from './audit.partitions.ts';
import { sealAuditEvents } from './audit.sealer.ts';
import { listAuditEvents } from './audit.service.ts';
import { verifyAuditChain } from './audit.verify.ts';

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
});

afterAll(async () => {
  await testDb?.drop();
});

// Each test works in its own years, so tests never see each other's partitions.

async function partitionBounds(name: string): Promise<string | undefined> {
  const result = await testDb.database.pool.query<{ bounds: string }>(
    `select pg_get_expr(c.relpartbound, c.oid) as bounds
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'platform' and c.relname = $1`,
    [name],
  );
  return result.rows[0]?.bounds;
}

async function partitionHolding(eventId: string): Promise<string | undefined> {
  const result = await testDb.database.pool.query<{ partition: string }>(
    'select tableoid::regclass::text as partition from platform.audit_events where id = $1',
    [eventId],
  );
  return result.rows[0]?.partition;
}

describe('ensureAuditPartitions', () => {
  it('creates UTC monthly partitions for the current month and the months ahead, across a year end', async () => {
    const results = await ensureAuditPartitions(testDb.database, {
      now: new Date('2040-11-30T23:30:00-05:00'),
      monthsAhead: 2,
    });
    expect(results).toEqual([
      {
        name: 'audit_events_y2040m12',
        rangeStart: new Date('2040-12-01T00:00:00Z'),
        rangeEnd: new Date('2041-01-01T00:00:00Z'),
        status: 'created',
      },
      {
        name: 'audit_events_y2041m01',
        rangeStart: new Date('2041-01-01T00:00:00Z'),
        rangeEnd: new Date('2041-02-01T00:00:00Z'),
        status: 'created',
      },
      {
        name: 'audit_events_y2041m02',
        rangeStart: new Date('2041-02-01T00:00:00Z'),
        rangeEnd: new Date('2041-03-01T00:00:00Z'),
        status: 'created',
      },
    ]);
    // The bounds are UTC midnights, whatever the session time zone.
    const [lastOfDecember, firstOfJanuary] = await recordCommitted(testDb.database, [
      buildAuditEvent({ occurredAt: new Date('2040-12-31T23:59:59.999Z') }),
      buildAuditEvent({ occurredAt: new Date('2041-01-01T00:00:00.000Z') }),
    ]);
    expect(await partitionHolding(lastOfDecember as string)).toBe('platform.audit_events_y2040m12');
    expect(await partitionHolding(firstOfJanuary as string)).toBe('platform.audit_events_y2041m01');
  });

  it('is idempotent: a second run finds every partition in place', async () => {
    const options = { now: new Date('2042-03-15T00:00:00Z'), monthsAhead: 1 };
    await ensureAuditPartitions(testDb.database, options);
    const again = await ensureAuditPartitions(testDb.database, options);
    expect(again.map((result) => result.status)).toEqual(['exists', 'exists']);
  });

  it('routes events into their month and protects new partitions against TRUNCATE', async () => {
    await ensureAuditPartitions(testDb.database, { now: new Date('2043-07-01T00:00:00Z'), monthsAhead: 0 });
    const [id] = await recordCommitted(testDb.database, [
      buildAuditEvent({ occurredAt: new Date('2043-07-31T23:59:59.999Z') }),
    ]);
    expect(await partitionHolding(id as string)).toBe('platform.audit_events_y2043m07');
    await expect(testDb.database.pool.query('truncate platform.audit_events_y2043m07')).rejects.toMatchObject(
      {
        code: 'KA001',
      },
    );
  });

  it('reports a month whose rows already sit in the DEFAULT partition as blocked, and creates the others', async () => {
    const [early] = await recordCommitted(testDb.database, [
      buildAuditEvent({ occurredAt: new Date('2044-05-10T00:00:00Z') }),
    ]);
    expect(await partitionHolding(early as string)).toBe('platform.audit_events_default');

    const results = await ensureAuditPartitions(testDb.database, {
      now: new Date('2044-05-01T00:00:00Z'),
      monthsAhead: 1,
    });
    expect(results.map((result) => [result.name, result.status])).toEqual([
      ['audit_events_y2044m05', 'blocked_by_default'],
      ['audit_events_y2044m06', 'created'],
    ]);
    expect(await partitionBounds('audit_events_y2044m05')).toBeUndefined();

    // The write was not lost: it stays readable and sealable in DEFAULT, and new writes still land.
    const [later] = await recordCommitted(testDb.database, [
      buildAuditEvent({ occurredAt: new Date('2044-05-20T00:00:00Z') }),
    ]);
    expect(await partitionHolding(later as string)).toBe('platform.audit_events_default');
    const listed = await listAuditEvents(testDb.database, {
      from: new Date('2044-05-01T00:00:00Z'),
      to: new Date('2044-06-01T00:00:00Z'),
      limit: 10,
    });
    expect(listed.events.map((event) => event.id)).toEqual([later, early]);
    await sealAuditEvents(testDb.database, 100);
    expect(await verifyAuditChain(testDb.database)).toMatchObject({ ok: true, unsealed: 0 });
  });

  it("keeps the chain intact through the README's procedure for moving a blocked month out of DEFAULT", async () => {
    const [stuck, stays] = await recordCommitted(testDb.database, [
      buildAuditEvent({ occurredAt: new Date('2048-05-10T00:00:00Z') }),
      buildAuditEvent({ occurredAt: new Date('2048-06-10T00:00:00Z') }),
    ]);
    await sealAuditEvents(testDb.database, 100);
    const client = await testDb.database.pool.connect();
    try {
      // The procedure from README.md, run as the superuser.
      await client.query(`
        begin;
        alter table platform.audit_events detach partition platform.audit_events_default;
        select platform.audit_ensure_partition('2048-05-01');
        insert into platform.audit_events overriding system value
          select * from platform.audit_events_default
          where occurred_at >= '2048-05-01T00:00:00Z' and occurred_at < '2048-06-01T00:00:00Z';
        set local session_replication_role = replica;
        delete from platform.audit_events_default
          where occurred_at >= '2048-05-01T00:00:00Z' and occurred_at < '2048-06-01T00:00:00Z';
        set local session_replication_role = origin;
        alter table platform.audit_events attach partition platform.audit_events_default default;
        commit;`);
    } catch (error) {
      await client.query('rollback');
      throw error;
    } finally {
      client.release();
    }
    expect(await partitionHolding(stuck as string)).toBe('platform.audit_events_y2048m05');
    expect(await partitionHolding(stays as string)).toBe('platform.audit_events_default');
    // The re-inserted row was queued again; the sealer must not seal it twice.
    expect(await sealAuditEvents(testDb.database, 100)).toMatchObject({ sealed: 0 });
    expect(await verifyAuditChain(testDb.database)).toMatchObject({ ok: true, unsealed: 0 });
    const again = await ensureAuditPartitions(testDb.database, {
      now: new Date('2048-05-01T00:00:00Z'),
      monthsAhead: 0,
    });
    expect(again.map((result) => result.status)).toEqual(['exists']);
  });

  it('gives up on a month with busy when another process holds the maintenance lock', async () => {
    const other = await testDb.database.pool.connect();
    try {
      await other.query('begin');
      await other.query('select pg_advisory_xact_lock(7271639003)');
      const results = await ensureAuditPartitions(testDb.database, {
        now: new Date('2045-01-01T00:00:00Z'),
        monthsAhead: 0,
      });
      expect(results.map((result) => result.status)).toEqual(['busy']);
    } finally {
      await other.query('rollback');
      other.release();
    }
    expect(await partitionBounds('audit_events_y2045m01')).toBeUndefined();
  });

  it('gives up with busy instead of queueing when a long transaction holds the table', async () => {
    const writer = await testDb.database.pool.connect();
    try {
      await writer.query('begin');
      await writer.query('lock table platform.audit_events in access share mode');
      const results = await ensureAuditPartitions(testDb.database, {
        now: new Date('2046-01-01T00:00:00Z'),
        monthsAhead: 0,
        lockTimeoutMs: 100,
      });
      expect(results.map((result) => result.status)).toEqual(['busy']);
    } finally {
      await writer.query('rollback');
      writer.release();
    }
    expect(await partitionBounds('audit_events_y2046m01')).toBeUndefined();
  });
});

describe('startAuditPartitionMaintenance', () => {
  it('creates the partitions ahead as soon as it starts', async () => {
    const maintenance = startAuditPartitionMaintenance({
      database: testDb.database,
      intervalMs: 3_600_000,
      monthsAhead: 1,
      logger: createLogger({ level: 'silent' }),
      clock: { now: () => new Date('2047-09-09T00:00:00Z') },
    });
    try {
      await vi.waitFor(async () => expect(await partitionBounds('audit_events_y2047m10')).toBeDefined(), {
        timeout: 10_000,
      });
      expect(await partitionBounds('audit_events_y2047m09')).toBeDefined();
    } finally {
      maintenance.stop();
    }
  });
});
