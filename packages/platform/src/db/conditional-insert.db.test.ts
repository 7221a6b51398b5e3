import type { RawBuilder } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../testing/index.ts';
import { insertRowsWhen } from './conditional-insert.ts';
import { sql } from './index.ts';

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  await execute(sql`create schema conditional_insert_test`);
  await execute(sql`create table conditional_insert_test.items (
    id uuid primary key,
    name text not null,
    tags text[] not null,
    details jsonb,
    price bigint not null,
    at timestamptz not null,
    note text default 'none',
    created_at timestamptz not null default now()
  )`);
});

/** Runs one statement on the test database. */
function execute<Row>(query: RawBuilder<Row>): Promise<Row[]> {
  return testDb.database.typed<unknown>().run(async (kysely) => (await query.execute(kysely)).rows);
}

afterAll(async () => {
  await testDb?.drop();
});

const TABLE = 'conditional_insert_test.items';

async function rows(): Promise<Record<string, unknown>[]> {
  return execute(sql<Record<string, unknown>>`
    select id, name, tags, details, price::text as price, at, note from conditional_insert_test.items order by name`);
}

describe('insertRowsWhen', () => {
  it('writes the rows with their column types when the condition selects a row, and defaults what they leave out', async () => {
    await execute(sql`truncate conditional_insert_test.items`);
    const at = new Date('2026-03-29T01:30:00.123Z');
    const items = [
      {
        id: '0195c0de-0000-7000-8000-000000000001',
        name: 'a',
        tags: ['x', 'y'],
        details: { nested: [1, 'two'] },
        price: 9_007_199_254,
        at,
      },
      {
        id: '0195c0de-0000-7000-8000-000000000002',
        name: "b'; drop table x; --",
        tags: [],
        details: null,
        price: 0,
        at,
      },
    ];

    const [result] = await execute(sql<{ written: number }>`
      with written as (${insertRowsWhen(TABLE, items, sql`select 1`)} returning 1)
      select count(*)::int as written from written`);

    expect(result?.written).toBe(2);
    expect(await rows()).toEqual([
      {
        id: items[0]?.id,
        name: 'a',
        tags: ['x', 'y'],
        details: { nested: [1, 'two'] },
        price: '9007199254',
        at,
        note: 'none',
      },
      {
        id: items[1]?.id,
        name: "b'; drop table x; --",
        tags: [],
        details: null,
        price: '0',
        at,
        note: 'none',
      },
    ]);
  });

  it('writes nothing when the condition selects nothing, in the same statement that decided it', async () => {
    await execute(sql`truncate conditional_insert_test.items`);
    const item = {
      id: '0195c0de-0000-7000-8000-000000000003',
      name: 'c',
      tags: [],
      price: 1,
      at: new Date(),
    };

    const [result] = await execute(sql<{ is_held: boolean }>`
      with held as (select 1 where false),
      inserted as (${insertRowsWhen(TABLE, [item], sql`select 1 from held`)})
      select exists (select 1 from held) as is_held`);

    expect(result?.is_held).toBe(false);
    expect(await rows()).toEqual([]);
  });

  it('refuses no rows, and rows that name different columns', () => {
    expect(() => insertRowsWhen(TABLE, [], sql`select 1`)).toThrow(/no rows/);
    expect(() =>
      insertRowsWhen(
        TABLE,
        [
          { id: 'a', name: 'b' },
          { name: 'b', id: 'a' },
        ],
        sql`select 1`,
      ),
    ).toThrow(/every row must name the columns id, name/);
    expect(() => insertRowsWhen(TABLE, [{ id: 'a' }, { id: 'a', name: 'b' }], sql`select 1`)).toThrow(
      /every row/,
    );
  });
});
