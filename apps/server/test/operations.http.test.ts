import { randomUUID } from 'node:crypto';
import { AppError } from '@keel/platform/errors';
import type { ServiceModule } from '@keel/platform/module';
import { emitEvent } from '@keel/platform/outbox';
import { createTestAccount, signIn, useTestApp } from '@keel/platform/testing';
import { sql } from 'kysely';
import { describe, expect, it, vi } from 'vitest';

// A module's background work as the server runs it: subscriptions and job
// queues declared while the module registers, started by the platform, and
// their dead letters listed and replayed by an operator over HTTP.

const handled: string[] = [];
const worked: string[] = [];
let isRefusing = true;

const chores: ServiceModule = {
  name: 'chores',
  schema: 'chores',
  routePrefix: '/chores',
  migrationsDirectory: '/nonexistent',
  register(app, context) {
    context.background.subscribe({
      name: 'chores.recorder',
      eventTypes: ['chores.chore_done.v1'],
      isOrderedPerAggregate: true,
      maxAttempts: 1,
      handler: async (event) => {
        if (isRefusing) throw new AppError('invalid', 'chores.refused', 'refusing for the test');
        handled.push(event.id);
      },
    });
    context.background.addJobQueue<{ label: string }>({
      name: 'chores.sweep',
      retryLimit: 0,
      handler: async (job) => {
        if (job.data.label === 'refuse') throw new AppError('conflict', 'chores.refused', 'refusing');
        worked.push(job.data.label);
      },
    });
    app.post('/send', { config: { access: 'public' } }, async (request) => {
      const { label } = request.body as { label: string };
      return { id: await context.background.jobs.send('chores.sweep', { label }) };
    });
  },
};

const harness = useTestApp({ modules: [chores], isBackgroundRunning: true });

async function signInOperator(): Promise<string> {
  const account = await createTestAccount(harness.testApp, { roles: ['platform:admin'] });
  return (await signIn(harness.testApp, account)).authorization;
}

async function emitChore(): Promise<string> {
  const envelope = await harness.testDb.database.typed<unknown>().transaction((trx) =>
    emitEvent(trx, {
      type: 'chores.chore_done.v1',
      aggregateType: 'chore',
      aggregateId: randomUUID(),
      payload: {},
    }),
  );
  return envelope.id;
}

describe('background work of a module', () => {
  it('delivers events to the module subscription and works its job queue while the server runs', async () => {
    isRefusing = false;
    const eventId = await emitChore();
    const sent = await harness.testApp.app.inject({
      method: 'POST',
      url: '/chores/send',
      payload: { label: 'kitchen' },
    });
    expect(sent.statusCode).toBe(200);
    await vi.waitFor(() => expect(handled).toContain(eventId), { timeout: 10_000, interval: 50 });
    await vi.waitFor(() => expect(worked).toContain('kitchen'), { timeout: 10_000, interval: 100 });
  });

  it('refuses subscriptions declared after the server started', () => {
    expect(() =>
      harness.testApp.background.registry.subscribe({
        name: 'chores.late',
        eventTypes: ['chores.chore_done.v1'],
        isOrderedPerAggregate: false,
        maxAttempts: 1,
        handler: async () => {},
      }),
    ).toThrow(/already prepared/);
  });
});

describe('event dead letters over HTTP', () => {
  it('lists a dead-lettered delivery and replays it to its subscriber', async () => {
    const authorization = await signInOperator();
    isRefusing = true;
    const eventId = await emitChore();
    const listDead = () =>
      harness.testApp.app.inject({
        method: 'GET',
        url: '/admin/events/dead-letters?subscriber=chores.recorder',
        headers: { authorization },
      });
    await vi.waitFor(
      async () =>
        expect((await listDead()).json().dead_letters).toContainEqual(
          expect.objectContaining({ event_id: eventId, last_error_code: 'chores.refused', attempts: 1 }),
        ),
      { timeout: 10_000, interval: 100 },
    );

    isRefusing = false;
    const replayed = await harness.testApp.app.inject({
      method: 'POST',
      url: `/admin/events/dead-letters/chores.recorder/${eventId}/replay`,
      headers: { authorization },
    });
    expect(replayed.statusCode).toBe(204);
    await vi.waitFor(() => expect(handled).toContain(eventId), { timeout: 10_000, interval: 50 });
    expect(
      (await listDead()).json().dead_letters.map((letter: { event_id: string }) => letter.event_id),
    ).not.toContain(eventId);
  });

  it('answers 404 events.dead_letter_not_found for an event that is not dead', async () => {
    const authorization = await signInOperator();
    const response = await harness.testApp.app.inject({
      method: 'POST',
      url: `/admin/events/dead-letters/chores.recorder/${randomUUID()}/replay`,
      headers: { authorization },
    });
    expect(response.statusCode).toBe(404);
    expect(response.json().code).toBe('events.dead_letter_not_found');
  });

  it('answers 400 for a limit out of range', async () => {
    const authorization = await signInOperator();
    const response = await harness.testApp.app.inject({
      method: 'GET',
      url: '/admin/events/dead-letters?limit=0',
      headers: { authorization },
    });
    expect(response.statusCode).toBe(400);
  });
});

describe('job dead letters over HTTP', () => {
  it('lists a job that failed for good and replays it to its queue', async () => {
    const authorization = await signInOperator();
    await harness.testApp.app.inject({ method: 'POST', url: '/chores/send', payload: { label: 'refuse' } });
    const listDead = () =>
      harness.testApp.app.inject({
        method: 'GET',
        url: '/admin/jobs/chores.sweep/dead-letters',
        headers: { authorization },
      });
    let deadLetterId = '';
    await vi.waitFor(
      async () => {
        const letters = (await listDead()).json().dead_letters as { id: string; error_code: string }[];
        expect(letters).toContainEqual(expect.objectContaining({ error_code: 'chores.refused' }));
        deadLetterId = letters[0]?.id ?? '';
      },
      { timeout: 15_000, interval: 200 },
    );

    const replayed = await harness.testApp.app.inject({
      method: 'POST',
      url: `/admin/jobs/chores.sweep/dead-letters/${deadLetterId}/replay`,
      headers: { authorization },
    });
    expect(replayed.statusCode).toBe(204);
    const waiting = await harness.testDb.database.typed<unknown>().run((db) =>
      sql<{
        count: string;
      }>`select count(*) as count from pgboss.job where name = 'chores.sweep' and data->>'label' = 'refuse'`.execute(
        db,
      ),
    );
    // The original failed job and its replay.
    expect(Number(waiting.rows[0]?.count)).toBeGreaterThanOrEqual(2);
  });

  it('answers 404 jobs.unknown_queue for a queue this server does not run', async () => {
    const authorization = await signInOperator();
    const response = await harness.testApp.app.inject({
      method: 'GET',
      url: '/admin/jobs/no-such-queue/dead-letters',
      headers: { authorization },
    });
    expect(response.statusCode).toBe(404);
    expect(response.json().code).toBe('jobs.unknown_queue');
  });

  it('refuses callers without platform:operate_background', async () => {
    const account = await createTestAccount(harness.testApp);
    const { authorization } = await signIn(harness.testApp, account);
    const response = await harness.testApp.app.inject({
      method: 'GET',
      url: '/admin/events/dead-letters',
      headers: { authorization },
    });
    expect(response.statusCode).toBe(403);
  });
});
