import { type AppError, assertNever, type ErrorKind, type FieldError } from './app-error.ts';

/** RFC 9457 problem details, as Keel renders them. */
export type ProblemDocument = {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  traceId?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
};

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

type KindPresentation = { status: number; title: string };

export function presentKind(kind: ErrorKind): KindPresentation {
  switch (kind) {
    case 'invalid':
      return { status: 400, title: 'Bad Request' };
    case 'unauthenticated':
      return { status: 401, title: 'Unauthorized' };
    case 'forbidden':
      return { status: 403, title: 'Forbidden' };
    case 'not_found':
      return { status: 404, title: 'Not Found' };
    case 'method_not_allowed':
      return { status: 405, title: 'Method Not Allowed' };
    case 'conflict':
      return { status: 409, title: 'Conflict' };
    case 'precondition_failed':
      return { status: 412, title: 'Precondition Failed' };
    case 'payload_too_large':
      return { status: 413, title: 'Content Too Large' };
    case 'unsupported_media_type':
      return { status: 415, title: 'Unsupported Media Type' };
    case 'unprocessable':
      return { status: 422, title: 'Unprocessable Content' };
    case 'rate_limited':
      return { status: 429, title: 'Too Many Requests' };
    case 'unavailable':
      return { status: 503, title: 'Service Unavailable' };
    case 'internal':
      return { status: 500, title: 'Internal Server Error' };
    default:
      return assertNever(kind);
  }
}

/**
 * Builds the problem document for an AppError. `type` is a stable URI per code
 * so clients can link documentation; `about:blank` would lose the code.
 */
export function toProblem(error: AppError, context: { instance: string; traceId?: string }): ProblemDocument {
  const { status, title } = presentKind(error.kind);
  const problem: ProblemDocument = {
    ...error.extensions,
    type: `https://keel.dev/problems/${error.code.replaceAll('.', '/')}`,
    title,
    status,
    detail: error.detail,
    instance: context.instance,
    code: error.code,
  };
  if (error.errors !== undefined) problem.errors = error.errors;
  if (context.traceId !== undefined) problem.traceId = context.traceId;
  return problem;
}
