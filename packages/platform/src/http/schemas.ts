import { type TSchema, Type } from 'typebox';

/** RFC 9457 problem details; extensions (`errors`, `location`, …) pass through. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ format: 'uri' }),
    title: Type.String(),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    detail: Type.String(),
    instance: Type.String(),
    code: Type.String({ description: 'Stable, machine-readable error code, e.g. users.email_taken' }),
    traceId: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          pointer: Type.String({ description: 'JSON pointer into the request, e.g. /body/email' }),
          detail: Type.String(),
        }),
      ),
    ),
  },
  { $id: 'Problem', additionalProperties: true, description: 'RFC 9457 problem details' },
);

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'The request is malformed or fails validation',
  401: 'Credentials are missing or invalid',
  403: 'The caller lacks the required permission',
  404: 'The resource does not exist',
  409: 'The request conflicts with the current state',
  412: 'The resource changed since it was read',
  413: 'The request body is too large',
  415: 'The content type is not supported',
  422: 'The idempotency key was reused with a different request',
  429: 'Too many requests',
  500: 'Unexpected server error',
  503: 'A dependency is unavailable; retry after the indicated delay',
};

/**
 * Response schemas for the error statuses an operation can return, each a
 * reference to the shared Problem schema, so OpenAPI lists them and the
 * serialiser renders them.
 *
 * @example
 * response: { 201: UserSchema, ...problemResponses(400, 409, 422) }
 */
export function problemResponses(...statuses: number[]): Record<number, ProblemResponse> {
  const responses: Record<number, ProblemResponse> = {};
  for (const status of [...statuses, 500, 503]) {
    responses[status] = {
      description: PROBLEM_DESCRIPTIONS[status] ?? 'Error',
      content: { 'application/problem+json': { schema: Type.Ref('Problem') } },
    };
  }
  return responses;
}

/** A response keyed by content type: errors are served as application/problem+json. */
export type ProblemResponse = { description: string; content: Record<string, { schema: TSchema }> };
