import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Kysely, sql } from '../db/index.ts';
import type { ServiceModule } from '../module/index.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../testing/index.ts';

type NotesSchema = { 'idempotency_test.notes': { id: string; text: string } };

// A throwaway service whose unit of work is a multi-statement transaction, the
// shape that completes its key with `complete(trx, response)`.
const notesModule: ServiceModule = {
  name: 'notes',
  schema: 'idempotency_test',
  routePrefix: '',
  migrationsDirectory: '',
  register(app, context) {
    const db = context.database.typed<NotesSchema>();
    app.post<{ Body: { text: string; steal?: boolean; fail?: boolean } }>(
      '/notes',
      { config: { access: 'public', idempotency: { required: true } } },
      async (request, reply) => {
        const { text, steal, fail } = request.body;
        const id = randomUUID();
        const response = { statusCode: 201, headers: { location: `/notes/${id}` }, body: { id, text } };
        await db.transaction(async (trx) => {
          await trx.insertInto('idempotency_test.notes').values({ id, text }).execute();
          if (fail) throw new Error('boom after the write');
          // Simulates the claim expiring and another request taking the key over mid-flight.
          if (steal) await takeOverClaim(trx, request.headers['idempotency-key'] as string);
          await request.idempotency?.complete(trx, response);
        });
        return reply.code(201).headers(response.headers).send(response.body);
      },
    );
  },
};

async function takeOverClaim(trx: Kysely<NotesSchema>, key: string): Promise<void> {
  await sql`update platform.idempotency_keys set lock_token = ${randomUUID()} where key = ${key}`.execute(
    trx,
  );
}

let testDb: TestDatabase;
let testApp: TestApp;

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  await testDb.database.pool.query(
    'create schema idempotency_test; create table idempotency_test.notes (id uuid primary key, text text not null)',
  );
  testApp = await buildTestApp({ database: testDb.database, modules: [notesModule] });
});

afterAll(async () => {
  await testApp.close();
  await testDb.drop();
});

function postNote(key: string | undefined, body: Record<string, unknown>) {
  return testApp.app.inject({
    method: 'POST',
    url: '/notes',
    headers: key === undefined ? {} : { 'idempotency-key': key },
    payload: body,
  });
}

async function countNotes(text: string): Promise<number> {
  const result = await testDb.database.pool.query(
    'select count(*) from idempotency_test.notes where text = $1',
    [text],
  );
  return Number(result.rows[0].count);
}

async function findKeyRow(key: string) {
  const result = await testDb.database.pool.query(
    'select status from platform.idempotency_keys where key = $1',
    [key],
  );
  return result.rows[0] as { status: string } | undefined;
}

describe('completing a key inside a multi-statement transaction', () => {
  it('commits the write with the key and replays the stored response on retry', async () => {
    const key = randomUUID();
    const text = `note-${key}`;
    const first = await postNote(key, { text });
    const retry = await postNote(key, { text });

    expect(first.statusCode).toBe(201);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual(first.json());
    expect(retry.headers.location).toBe(first.headers.location);
    expect(await countNotes(text)).toBe(1);
    expect(await findKeyRow(key)).toEqual({ status: 'completed' });
  });

  it('rolls the write back with 409 idempotency.in_progress when the claim was taken over', async () => {
    const key = randomUUID();
    const text = `stolen-${key}`;
    const response = await postNote(key, { text, steal: true });

    expect(response.statusCode).toBe(409);
    expect(response.json().code).toBe('idempotency.in_progress');
    expect(await countNotes(text)).toBe(0);
  });

  it('releases the key after a 5xx so that a retry runs again', async () => {
    const key = randomUUID();
    const text = `failing-${key}`;
    const failed = await postNote(key, { text, fail: true });

    expect(failed.statusCode).toBe(500);
    expect(await countNotes(text)).toBe(0);
    expect(await findKeyRow(key)).toBeUndefined();
  });

  it('answers 400 idempotency.key_required when the route requires a key and none is sent', async () => {
    const response = await postNote(undefined, { text: 'no key' });

    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('idempotency.key_required');
  });
});
