import { Type } from 'typebox';
import type { Database } from '../db/index.ts';
import { type KeelApp, problemResponses } from '../http/index.ts';
import { DEAD_LETTER_LIST_LIMIT_MAX, listDeadLetters, replayDeadLetter } from '../outbox/index.ts';
import type { Background } from './background.ts';

const TAGS = ['operations'];
const SECURITY = [{ bearerAuth: [] }];
const ACCESS = 'platform:operate_background';
const NAME = Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9][a-z0-9_.:-]*$' });

const EventDeadLetterQuery = Type.Object(
  {
    subscriber: Type.Optional(NAME),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: DEAD_LETTER_LIST_LIMIT_MAX })),
  },
  { additionalProperties: false },
);
const EventDeadLetterParams = Type.Object({ subscriber: NAME, eventId: Type.String({ format: 'uuid' }) });
const EventDeadLetterList = Type.Object({
  dead_letters: Type.Array(
    Type.Object({
      subscriber: Type.String(),
      event_id: Type.String(),
      event_type: Type.String(),
      aggregate_type: Type.String(),
      aggregate_id: Type.String(),
      occurred_at: Type.String({ format: 'date-time' }),
      attempts: Type.Integer(),
      last_error_code: Type.Union([Type.String(), Type.Null()]),
      last_attempted_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
      dead_at: Type.String({ format: 'date-time' }),
    }),
  ),
});
const JobDeadLetterQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) },
  { additionalProperties: false },
);
const JobQueueParams = Type.Object({ queue: NAME });
const JobDeadLetterParams = Type.Object({ queue: NAME, id: Type.String({ format: 'uuid' }) });
const JobDeadLetterList = Type.Object({
  dead_letters: Type.Array(
    Type.Object({
      id: Type.String(),
      queue: Type.String(),
      failed_job_id: Type.Union([Type.String(), Type.Null()]),
      retry_count: Type.Union([Type.Integer(), Type.Null()]),
      error_code: Type.Union([Type.String(), Type.Null()]),
      dead_lettered_at: Type.String({ format: 'date-time' }),
      sent_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    }),
  ),
});

/**
 * Dead letters of the event bus and the job queues, for operators: list them
 * and send one back for another full round of attempts. Payloads are never
 * shown here (they may hold personal data); the ids lead to them.
 */
export function registerOperationsRoutes(
  app: KeelApp,
  deps: { database: Database; background: Background },
): void {
  app.get(
    '/admin/events/dead-letters',
    {
      config: { access: ACCESS },
      schema: {
        operationId: 'listEventDeadLetters',
        tags: TAGS,
        summary: 'List dead-lettered event deliveries, most recent first',
        security: SECURITY,
        querystring: EventDeadLetterQuery,
        response: { 200: EventDeadLetterList, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const letters = await listDeadLetters(deps.database, {
        ...(request.query.subscriber === undefined ? {} : { subscriber: request.query.subscriber }),
        limit: request.query.limit ?? 100,
      });
      return {
        dead_letters: letters.map((letter) => ({
          subscriber: letter.subscriber,
          event_id: letter.eventId,
          event_type: letter.eventType,
          aggregate_type: letter.aggregateType,
          aggregate_id: letter.aggregateId,
          occurred_at: letter.occurredAt.toISOString(),
          attempts: letter.attempts,
          last_error_code: letter.lastErrorCode,
          last_attempted_at: letter.lastAttemptedAt?.toISOString() ?? null,
          dead_at: letter.deadAt.toISOString(),
        })),
      };
    },
  );

  app.post(
    '/admin/events/dead-letters/:subscriber/:eventId/replay',
    {
      config: { access: ACCESS },
      schema: {
        operationId: 'replayEventDeadLetter',
        tags: TAGS,
        summary: 'Deliver a dead-lettered event to its subscriber again, with a fresh attempt budget',
        security: SECURITY,
        params: EventDeadLetterParams,
        response: {
          204: Type.Null({ description: 'Queued for delivery' }),
          ...problemResponses(400, 401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      await replayDeadLetter(deps.database, request.params.subscriber, request.params.eventId);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/admin/jobs/:queue/dead-letters',
    {
      config: { access: ACCESS },
      schema: {
        operationId: 'listJobDeadLetters',
        tags: TAGS,
        summary: 'List the dead letters of a job queue, oldest first',
        security: SECURITY,
        params: JobQueueParams,
        querystring: JobDeadLetterQuery,
        response: { 200: JobDeadLetterList, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const letters = await deps.background
        .jobs()
        .listDeadLetters(request.params.queue, { limit: request.query.limit ?? 100 });
      return {
        dead_letters: letters.map((letter) => ({
          id: letter.id,
          queue: letter.queue,
          failed_job_id: letter.failedJobId,
          retry_count: letter.retryCount,
          error_code: letter.error?.code ?? null,
          dead_lettered_at: letter.deadLetteredAt.toISOString(),
          sent_at: letter.sentAt?.toISOString() ?? null,
        })),
      };
    },
  );

  app.post(
    '/admin/jobs/:queue/dead-letters/:id/replay',
    {
      config: { access: ACCESS },
      schema: {
        operationId: 'replayJobDeadLetter',
        tags: TAGS,
        summary: 'Send a dead-lettered job back to its queue with a full retry budget',
        security: SECURITY,
        params: JobDeadLetterParams,
        response: {
          204: Type.Null({ description: 'Queued again' }),
          ...problemResponses(400, 401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      await deps.background.jobs().replayDeadLetter(request.params.queue, request.params.id);
      return reply.code(204).send(null);
    },
  );
}
