import { type KeelApp, problemResponses } from '@keel/platform/http';
import type { StoredResponse } from '@keel/platform/idempotency';
import type { Static } from 'typebox';
import { CreateUserBody, UserIdParams, UserResponse } from './user.schemas.ts';
import type { UserService } from './user.service.ts';
import { type User, userLocation } from './user.ts';

function toUserResponse(user: User): Static<typeof UserResponse> {
  return {
    user_id: user.id,
    name: user.name,
    email: user.email,
    phone: user.phone,
    created_at: user.createdAt.toISOString(),
  };
}

function created(user: User) {
  return {
    statusCode: 201 as const,
    headers: { location: userLocation(user.id) },
    body: toUserResponse(user),
  } satisfies StoredResponse;
}

export function registerUserRoutes(app: KeelApp, users: UserService): void {
  app.post(
    '/user',
    {
      config: { access: 'user-metadata:write', idempotency: { required: false } },
      schema: {
        operationId: 'createUser',
        tags: ['users'],
        summary: 'Create a user',
        security: [{ bearerAuth: [] }],
        description:
          'Assigns `user_id` and `created_at`. Send an `Idempotency-Key` to make retries safe; without one, ' +
          "a second user with the same email is refused with `users.email_taken` and the existing user's location.",
        headers: {
          type: 'object',
          // Documented, not validated here: the idempotency hook checks the key
          // and answers `idempotency.key_invalid`, which a schema failure would hide.
          properties: {
            'idempotency-key': { type: 'string', description: '1-255 printable ASCII characters' },
          },
        },
        body: CreateUserBody,
        response: {
          201: { ...UserResponse, description: 'The created user' },
          ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429),
        },
      },
    },
    async (request, reply) => {
      const claim = request.idempotency;
      const user = await users.createUser(request.body, {
        ...(claim ? { idempotency: { claim, respond: created } } : {}),
      });
      const response = created(user);
      return reply.code(response.statusCode).headers(response.headers).send(response.body);
    },
  );

  app.get(
    '/user/:id',
    {
      config: { access: 'user-metadata:read' },
      schema: {
        operationId: 'getUser',
        tags: ['users'],
        summary: 'Fetch a user by id',
        security: [{ bearerAuth: [] }],
        params: UserIdParams,
        response: {
          200: { ...UserResponse, description: 'The user' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => toUserResponse(await users.getUser(request.params.id)),
  );
}
