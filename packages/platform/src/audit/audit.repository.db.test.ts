import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sql } from '../db/index.ts';
import { createTestDatabase, type TestDatabase } from '../testing/test-database.ts';
import { AUDIT_APPEND_ONLY_SQLSTATE } from './audit.errors.ts';
import { buildAuditEvent, recordCommitted } from './audit.factories.ts';
import { sealAuditEvents } from './audit.sealer.ts';
import { listAuditEvents, recordAuditEvent, recordAuditEventWhen } from './audit.service.ts';
import { verifyAuditChain } from './audit.verify.ts';

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
});

afterAll(async () => {
  await testDb?.drop();
});

async function countEvents(column: 'resource_id' | 'actor_id', value: string): Promise<number> {
  const result = await testDb.database.pool.query<{ count: string }>(
    `select count(*) from platform.audit_events where ${column} = $1`,
    [value],
  );
  return Number(result.rows[0]?.count);
}

describe('recordAuditEvent', () => {
  it('commits the event with the transaction that records it', async () => {
    const event = buildAuditEvent();
    await recordCommitted(testDb.database, [event]);
    expect(await countEvents('resource_id', event.resourceId as string)).toBe(1);
  });

  it('leaves no event behind when the recording transaction rolls back', async () => {
    const event = buildAuditEvent();
    const failing = testDb.database.typed<unknown>().transaction(async (trx) => {
      await recordAuditEvent(trx, event);
      throw new Error('the business write failed');
    });
    await expect(failing).rejects.toThrow('the business write failed');
    expect(await countEvents('resource_id', event.resourceId as string)).toBe(0);
  });

  it('stores the redacted changes, the address, and a truncated user agent', async () => {
    const event = buildAuditEvent({
      ip: '2001:db8::5',
      userAgent: 'x'.repeat(2000),
      changes: { password: { from: 'old', to: 'new' }, email: { from: 'a@x.io', to: 'b@x.io' } },
      occurredAt: new Date('2025-06-01T10:00:00.000Z'),
    });
    await recordCommitted(testDb.database, [event]);
    const page = await listAuditEvents(testDb.database, {
      resourceId: event.resourceId as string,
      limit: 10,
    });
    expect(page.events).toEqual([
      {
        id: expect.stringMatching(/^\d+$/),
        occurredAt: new Date('2025-06-01T10:00:00.000Z'),
        actorType: 'user',
        actorId: event.actorId,
        action: 'users.profile_updated',
        resourceType: 'user',
        resourceId: event.resourceId,
        outcome: 'success',
        requestId: event.requestId,
        ip: '2001:db8::5',
        userAgent: 'x'.repeat(512),
        changes: { password: '[redacted]', email: { from: 'a@x.io', to: 'b@x.io' } },
      },
    ]);
  });

  it("defaults occurredAt to the transaction's time", async () => {
    const event = buildAuditEvent({ occurredAt: undefined });
    const before = Date.now();
    await recordCommitted(testDb.database, [event]);
    const [stored] = (
      await listAuditEvents(testDb.database, { resourceId: event.resourceId as string, limit: 1 })
    ).events;
    expect(stored?.occurredAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(stored?.occurredAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it('rejects a user actor without an id through the database constraint', async () => {
    const writing = recordCommitted(testDb.database, [buildAuditEvent({ actorType: 'user', actorId: null })]);
    await expect(writing).rejects.toMatchObject({ code: '23514' });
  });

  it('rejects an action that is not dotted lower snake case', async () => {
    const writing = recordCommitted(testDb.database, [buildAuditEvent({ action: 'Login Succeeded' })]);
    await expect(writing).rejects.toMatchObject({ code: '23514' });
  });

  it('records while a sealer holds its lock: writers never wait for the sealer', async () => {
    const sealer = await testDb.database.pool.connect();
    try {
      await sealer.query('begin');
      await sealer.query('select pg_advisory_xact_lock(7271639002)');
      const event = buildAuditEvent();
      await recordCommitted(testDb.database, [event]);
      expect(await countEvents('resource_id', event.resourceId as string)).toBe(1);
      // And a second sealer gives up instead of queueing behind the first.
      expect(await sealAuditEvents(testDb.database, 10)).toMatchObject({ sealed: 0, wasLockBusy: true });
    } finally {
      await sealer.query('rollback');
      sealer.release();
    }
  });
});

describe('append-only audit tables', () => {
  async function someMonthlyPartition(): Promise<string> {
    const result = await testDb.database.pool.query<{ relname: string }>(`
      select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'platform.audit_events'::regclass and c.relname <> 'audit_events_default'
      order by c.relname limit 1`);
    const name = result.rows[0]?.relname;
    if (name === undefined) throw new Error('the migration created no monthly partition');
    return name;
  }

  it('rejects UPDATE of an audit event with the append-only SQLSTATE', async () => {
    const event = buildAuditEvent();
    await recordCommitted(testDb.database, [event]);
    const updating = testDb.database.pool.query(
      `update platform.audit_events set action = 'users.nothing_happened' where resource_id = $1`,
      [event.resourceId],
    );
    await expect(updating).rejects.toMatchObject({ code: AUDIT_APPEND_ONLY_SQLSTATE });
  });

  it('rejects DELETE of an audit event, also when addressed through its partition', async () => {
    const current = buildAuditEvent({ occurredAt: new Date() });
    await recordCommitted(testDb.database, [current]);
    const partition = await someMonthlyPartition();
    await expect(
      testDb.database.pool.query('delete from platform.audit_events where resource_id = $1', [
        current.resourceId,
      ]),
    ).rejects.toMatchObject({ code: AUDIT_APPEND_ONLY_SQLSTATE });
    await expect(testDb.database.pool.query(`delete from platform.${partition}`)).rejects.toMatchObject({
      code: AUDIT_APPEND_ONLY_SQLSTATE,
    });
    expect(await countEvents('resource_id', current.resourceId as string)).toBe(1);
  });

  it('rejects TRUNCATE of the table, of a monthly partition and of the DEFAULT partition', async () => {
    await recordCommitted(testDb.database, [buildAuditEvent()]);
    const partition = await someMonthlyPartition();
    for (const table of ['audit_events', partition, 'audit_events_default']) {
      await expect(testDb.database.pool.query(`truncate platform.${table}`)).rejects.toMatchObject({
        code: AUDIT_APPEND_ONLY_SQLSTATE,
      });
    }
  });

  it('rejects UPDATE, DELETE and TRUNCATE of seals', async () => {
    await recordCommitted(testDb.database, [buildAuditEvent()]);
    await sealAuditEvents(testDb.database, 100);
    const pool = testDb.database.pool;
    await expect(pool.query(`update platform.audit_seals set hash = repeat('0', 64)`)).rejects.toMatchObject({
      code: AUDIT_APPEND_ONLY_SQLSTATE,
    });
    await expect(pool.query('delete from platform.audit_seals')).rejects.toMatchObject({
      code: AUDIT_APPEND_ONLY_SQLSTATE,
    });
    await expect(pool.query('truncate platform.audit_seals')).rejects.toMatchObject({
      code: AUDIT_APPEND_ONLY_SQLSTATE,
    });
    const seals = await pool.query<{ count: string }>('select count(*) from platform.audit_seals');
    expect(Number(seals.rows[0]?.count)).toBeGreaterThan(0);
  });
});

describe('listAuditEvents', () => {
  it('filters by actor, by resource, by action and by time range', async () => {
    const actorId = `actor-${randomUUID()}`;
    const resourceId = randomUUID();
    const action = `tests.filtered_${randomUUID().replaceAll('-', '_')}`;
    const [byActor, byResource, byAction, early, late] = await recordCommitted(testDb.database, [
      buildAuditEvent({ actorId, occurredAt: new Date('2024-01-10T00:00:00Z') }),
      buildAuditEvent({ resourceType: 'invoice', resourceId, occurredAt: new Date('2024-01-11T00:00:00Z') }),
      buildAuditEvent({ action, occurredAt: new Date('2024-01-12T00:00:00Z') }),
      buildAuditEvent({ actorId, action, occurredAt: new Date('2024-02-01T00:00:00Z') }),
      buildAuditEvent({ actorId, action, occurredAt: new Date('2024-03-01T00:00:00Z') }),
    ]);
    const idsOf = async (query: Parameters<typeof listAuditEvents>[1]) =>
      (await listAuditEvents(testDb.database, query)).events.map((event) => event.id);

    expect(await idsOf({ actorId, limit: 10 })).toEqual([late, early, byActor]);
    expect(await idsOf({ resourceType: 'invoice', resourceId, limit: 10 })).toEqual([byResource]);
    expect(await idsOf({ resourceType: 'user', resourceId, limit: 10 })).toEqual([]);
    expect(await idsOf({ action, limit: 10 })).toEqual([late, early, byAction]);
    expect(
      await idsOf({
        actorId,
        from: new Date('2024-02-01T00:00:00Z'),
        to: new Date('2024-03-01T00:00:00Z'),
        limit: 10,
      }),
    ).toEqual([early]);
  });

  it('pages newest first with no duplicates and no gaps, ties on time broken by id', async () => {
    const resourceId = randomUUID();
    const sameInstant = new Date('2025-05-05T05:05:05.005Z');
    const inputs = Array.from({ length: 23 }, (_, index) =>
      buildAuditEvent({
        resourceType: 'report',
        resourceId,
        // Runs of identical timestamps, so the id has to break ties across page boundaries.
        occurredAt: index % 3 === 0 ? sameInstant : new Date(Date.UTC(2025, 4, 1 + (index % 7))),
      }),
    );
    const ids = await recordCommitted(testDb.database, inputs);
    // Events without an explicit time share the transaction's now() to the microsecond.
    ids.push(
      ...(await recordCommitted(testDb.database, [
        buildAuditEvent({ resourceType: 'report', resourceId, occurredAt: undefined }),
        buildAuditEvent({ resourceType: 'report', resourceId, occurredAt: undefined }),
        buildAuditEvent({ resourceType: 'report', resourceId, occurredAt: undefined }),
      ])),
    );

    const seen: { id: string; occurredAt: Date }[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await listAuditEvents(testDb.database, {
        resourceType: 'report',
        resourceId,
        limit: 4,
        cursor,
      });
      expect(page.events.length).toBeLessThanOrEqual(4);
      seen.push(...page.events);
      cursor = page.nextCursor ?? undefined;
      pages += 1;
      if (pages === 2) {
        // An event recorded mid-way is newer than every page already read: it must not shift later pages.
        await recordCommitted(testDb.database, [buildAuditEvent({ resourceType: 'report', resourceId })]);
      }
    } while (cursor !== undefined);

    expect(pages).toBe(7);
    expect(new Set(seen.map((event) => event.id)).size).toBe(seen.length);
    expect(seen.map((event) => event.id).sort()).toEqual([...ids].sort());
    const order = [...seen].sort(
      (a, b) => b.occurredAt.getTime() - a.occurredAt.getTime() || Number(BigInt(b.id) - BigInt(a.id)),
    );
    expect(seen.map((event) => event.id)).toEqual(order.map((event) => event.id));
  });

  it('returns no next cursor when the page holds the last event', async () => {
    const resourceId = randomUUID();
    await recordCommitted(testDb.database, [
      buildAuditEvent({ resourceId }),
      buildAuditEvent({ resourceId }),
    ]);
    const page = await listAuditEvents(testDb.database, { resourceId, limit: 2 });
    expect(page.events).toHaveLength(2);
    expect(page.nextCursor).toBeNull();
  });

  it('rejects a tampered cursor with audit.invalid_cursor', async () => {
    await expect(
      listAuditEvents(testDb.database, { limit: 5, cursor: 'bm90LWEtY3Vyc29y' }),
    ).rejects.toMatchObject({
      kind: 'invalid',
      code: 'audit.invalid_cursor',
    });
  });

  it('rejects a limit outside 1..500 with audit.invalid_limit', async () => {
    for (const limit of [0, 501, 2.5]) {
      await expect(listAuditEvents(testDb.database, { limit })).rejects.toMatchObject({
        kind: 'invalid',
        code: 'audit.invalid_limit',
      });
    }
  });
});

describe('recordAuditEventWhen', () => {
  async function recordInStatement(
    event: ReturnType<typeof buildAuditEvent>,
    isWritten: boolean,
  ): Promise<void> {
    await testDb.database.typed<unknown>().autocommit((writer) =>
      sql`with changed as (select 1 where ${isWritten}::boolean),
          audited as (${recordAuditEventWhen(event, sql`select 1 from changed`)})
          select 1`.execute(writer),
    );
  }

  it('stores exactly what recordAuditEvent stores (redacted, truncated) when its condition selects a row', async () => {
    const input = {
      ip: '192.0.2.7',
      userAgent: 'y'.repeat(600),
      changes: { password: { from: 'old', to: 'new' }, plan: { from: 'free', to: 'pro' } },
      occurredAt: new Date('2025-06-02T08:00:00.000Z'),
    };
    const inStatement = buildAuditEvent(input);
    const inTransaction = buildAuditEvent({ ...input, resourceId: `${inStatement.resourceId}-trx` });
    await recordInStatement(inStatement, true);
    await recordCommitted(testDb.database, [inTransaction]);

    const [stored] = (
      await listAuditEvents(testDb.database, { resourceId: inStatement.resourceId as string, limit: 5 })
    ).events;
    const [reference] = (
      await listAuditEvents(testDb.database, { resourceId: inTransaction.resourceId as string, limit: 5 })
    ).events;
    expect(stored).toEqual({
      ...reference,
      id: expect.stringMatching(/^\d+$/),
      resourceId: inStatement.resourceId,
      requestId: inStatement.requestId,
      actorId: inStatement.actorId,
    });
    expect(stored?.changes).toEqual({ password: '[redacted]', plan: { from: 'free', to: 'pro' } });
    expect(stored?.userAgent).toHaveLength(512);
  });

  it('writes nothing when its condition selects nothing', async () => {
    const event = buildAuditEvent();
    await recordInStatement(event, false);
    expect(await countEvents('resource_id', event.resourceId as string)).toBe(0);
  });

  it('queues the event for sealing like any other, and the sealed chain verifies', async () => {
    const event = buildAuditEvent({ occurredAt: undefined });
    await recordInStatement(event, true);
    const pending = await testDb.database.pool.query(
      `select 1 from platform.audit_pending_seals p join platform.audit_events e on e.id = p.event_id
       where e.resource_id = $1`,
      [event.resourceId],
    );
    expect(pending.rowCount).toBe(1);
    while ((await sealAuditEvents(testDb.database, 500)).sealed > 0);
    expect(await verifyAuditChain(testDb.database)).toMatchObject({ ok: true, unsealed: 0 });
  });
});
