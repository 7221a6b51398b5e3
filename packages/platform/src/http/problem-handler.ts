import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import {
  AppError,
  type FieldError,
  isAppError,
  PROBLEM_CONTENT_TYPE,
  presentKind,
  toProblem,
} from '../errors/index.ts';
import { activeTraceId } from '../observability/tracing.ts';

/** What the request log line says about a failure: code and message for 4xx, only the class for 5xx. */
export type ErrorSummary = { code: string; message?: string; errorClass?: string };

type ValidationIssue = {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
};

const FASTIFY_ERRORS: Record<string, (error: FastifyError) => AppError> = {
  FST_ERR_CTP_INVALID_JSON_BODY: () =>
    new AppError('invalid', 'request.malformed_json', 'The request body is not valid JSON'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () =>
    new AppError(
      'invalid',
      'request.empty_body',
      "The request has content-type 'application/json' but no body",
    ),
  FST_ERR_CTP_BODY_TOO_LARGE: () =>
    new AppError('payload_too_large', 'request.body_too_large', 'The request body is too large'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () =>
    new AppError(
      'unsupported_media_type',
      'request.unsupported_media_type',
      'Send the request body as application/json',
    ),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () =>
    new AppError('invalid', 'request.invalid_content_length', 'Content-Length does not match the body'),
};

/**
 * The one place errors become responses: every failure, 404 and 405
 * included, leaves as RFC 9457 problem+json. Unknown errors are logged in
 * full and answered with a generic 500 that reveals nothing.
 */
export function installProblemHandling(app: FastifyInstance): void {
  const knownRoutes = FindMyWay();
  app.addHook('onRoute', (route) => {
    // A catch-all (the CORS preflight route, OPTIONS *) matches every path and
    // would turn every 404 into a 405 that allows only OPTIONS.
    if (route.url === '*' || route.url === '/*') return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      // The shadow router only answers "does this path exist for another method?".
      knownRoutes.on(method as HTTPMethod, route.url, () => undefined);
    }
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const appError = toAppError(error);
    if (appError === undefined) {
      request.log.error({ err: error }, 'unhandled error');
      request.errorSummary = { code: 'internal', errorClass: error?.constructor?.name ?? typeof error };
      return sendProblem(
        request,
        reply,
        new AppError('internal', 'internal', 'An unexpected error occurred; it has been logged'),
      );
    }
    if (appError.kind === 'unavailable' || appError.kind === 'internal') {
      request.log.error({ err: error }, appError.detail);
    }
    return sendProblem(request, reply, appError);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0] ?? '/';
    const allowed = ALL_METHODS.filter(
      (method) => method !== request.method && knownRoutes.find(method, path) !== null,
    );
    if (allowed.length > 0) {
      return sendProblem(
        request,
        reply,
        new AppError(
          'method_not_allowed',
          'request.method_not_allowed',
          `${request.method} is not allowed on ${path}`,
          {
            headers: { allow: allowed.join(', ') },
          },
        ),
      );
    }
    return sendProblem(
      request,
      reply,
      new AppError('not_found', 'request.route_not_found', `No route for ${request.method} ${path}`),
    );
  });
}

const ALL_METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** Renders an AppError as problem+json, with its headers (Retry-After, Allow, …). */
export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: AppError): FastifyReply {
  const traceId = activeTraceId();
  const problem = toProblem(error, {
    instance: request.url.split('?', 1)[0] ?? '/',
    ...(traceId ? { traceId } : {}),
  });
  request.errorSummary ??=
    error.kind === 'internal'
      ? { code: error.code, errorClass: 'AppError' }
      : { code: error.code, message: error.detail };
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply.code(presentKind(error.kind).status).type(PROBLEM_CONTENT_TYPE).send(problem);
}

function toAppError(error: FastifyError): AppError | undefined {
  if (isAppError(error)) return error;
  if (error.validation) {
    const context = error.validationContext ?? 'body';
    return new AppError('invalid', 'request.invalid', `The request ${context} is invalid`, {
      errors: error.validation.map((issue) => toFieldError(context, issue as ValidationIssue)),
    });
  }
  const known = error.code ? FASTIFY_ERRORS[error.code] : undefined;
  if (known) return known(error);
  // Fastify's own 4xx (bad URL, unsupported version, …) carry safe, fixed messages.
  if (
    typeof error.statusCode === 'number' &&
    error.statusCode >= 400 &&
    error.statusCode < 500 &&
    error.code?.startsWith('FST_')
  ) {
    return new AppError('invalid', 'request.invalid', error.message);
  }
  return undefined;
}

function toFieldError(context: string, issue: ValidationIssue): FieldError {
  const base = `/${context}${issue.instancePath ?? ''}`;
  const params = issue.params ?? {};
  const missing = firstOf(params.missingProperty ?? params.requiredProperties);
  if (issue.keyword === 'required' && missing !== undefined)
    return { pointer: `${base}/${missing}`, detail: 'is required' };
  const extra = firstOf(params.additionalProperty ?? params.additionalProperties);
  if (issue.keyword === 'additionalProperties' && extra !== undefined) {
    return { pointer: `${base}/${extra}`, detail: 'is not an allowed property' };
  }
  return { pointer: base, detail: issue.message ?? 'is invalid' };
}

function firstOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return undefined;
}
