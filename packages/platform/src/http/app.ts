import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import { AppError, PROBLEM_CONTENT_TYPE, toProblem } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import type { HttpMetrics } from '../observability/metrics.ts';
import { type Authenticator, enforceAccessRules } from './access.ts';
import './fastify-types.ts';
import { lazyRequestLoggerFactory } from './lazy-request-logger.ts';
import { installProblemHandling } from './problem-handler.ts';
import { requestIdFor } from './request-id.ts';
import { ProblemSchema } from './schemas.ts';
import { computeSecurityHeaders } from './security-headers.ts';
import { buildSerializerFactory } from './serializer.ts';
import { installRequestTelemetry } from './telemetry-hooks.ts';
import { typeBoxValidatorCompiler } from './validator.ts';

export type KeelApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export type HttpAppOptions = {
  logger: Logger;
  metrics: HttpMetrics;
  bodyLimitBytes: number;
  /** Origins allowed by CORS; empty sends no CORS headers at all. */
  corsOrigins: string[];
  /** Fastify `trustProxy`: false unless the deployment sits behind a known proxy. */
  trustProxy: boolean | number | string[];
  tracing: boolean;
  authenticate?: Authenticator;
  /**
   * When set, only routes with these URLs are served; any other request
   * answers 404 `request.route_not_found` before authentication, as if the
   * route did not exist (a worker process's port serves probes and metrics).
   */
  servedRoutes?: ReadonlySet<string>;
  openapi: { title: string; version: string; description: string };
};

const DOCS_PREFIX = '/docs';

/**
 * Builds the Fastify app every Keel process serves: request ids, problem+json
 * errors, deny-by-default access rules, security headers, CORS, telemetry and
 * OpenAPI. It never listens; `apps/server/src/main.ts` does.
 *
 * @example
 * const app = await createHttpApp({ logger, metrics, bodyLimitBytes: 1_048_576, corsOrigins: [],
 *   trustProxy: false, tracing: false, openapi: { title: 'Keel', version: '1.0.0', description: '' } });
 */
export async function createHttpApp(options: HttpAppOptions): Promise<KeelApp> {
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; widening it keeps every plugin's types on the default logger.
    loggerInstance: options.logger as FastifyBaseLogger,
    // Our onResponse hook writes the one line per request; Fastify's own lines would double it.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    childLoggerFactory: lazyRequestLoggerFactory,
    genReqId: requestIdFor,
    bodyLimit: options.bodyLimitBytes,
    trustProxy: toTrustProxy(options.trustProxy),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 200 },
    schemaController: { compilersFactory: { buildSerializer: buildSerializerFactory } },
    frameworkErrors: (error, request, reply) => {
      // Fastify calls this for failures before routing (e.g. a malformed URL).
      const problem = toProblem(new AppError('invalid', 'request.invalid', error.message), { instance: '/' });
      request.log.info({ err: { message: error.message } }, 'request rejected before routing');
      void (reply as FastifyReply).code(400).type(PROBLEM_CONTENT_TYPE).send(problem);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Keel APIs accept JSON only. Fastify's built-in text/plain parser would let a
  // mislabelled body through to validation (400) instead of the 415 we document.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(typeBoxValidatorCompiler);
  app.addSchema(ProblemSchema);

  const securityHeaders = computeSecurityHeaders();
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(securityHeaders);
    reply.header('x-request-id', request.id);
    done();
  });

  // Platform-owned documentation routes and the CORS preflight catch-all (OPTIONS *,
  // answered by @fastify/cors before any handler) are public; every other route
  // must say who may call it.
  app.addHook('onRoute', (route) => {
    const isPlatformRoute = route.url.startsWith(DOCS_PREFIX) || isCorsPreflightRoute(route);
    if (isPlatformRoute && route.config?.access === undefined) {
      route.config = { ...route.config, access: 'public' };
    }
  });
  const { servedRoutes } = options;
  if (servedRoutes !== undefined) {
    app.addHook('onRequest', async (request) => {
      if (servedRoutes.has(request.routeOptions.url ?? '')) return;
      const path = request.url.split('?', 1)[0] ?? '/';
      throw new AppError('not_found', 'request.route_not_found', `No route for ${request.method} ${path}`);
    });
  }
  enforceAccessRules(app, options.authenticate);
  installProblemHandling(app);
  installRequestTelemetry(app, options.metrics, { tracing: options.tracing });

  if (options.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: options.corsOrigins,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['content-type', 'authorization', 'idempotency-key', 'if-match', 'x-request-id'],
      exposedHeaders: ['location', 'etag', 'x-request-id', 'idempotent-replayed', 'retry-after'],
    });
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: options.openapi,
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } },
      },
    },
    refResolver: {
      // Shared schemas keep their $id as their component name (#/components/schemas/Problem).
      buildLocalReference: (json, _baseUri, _fragment, index) =>
        typeof json.$id === 'string' ? json.$id : `def-${index}`,
    },
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX, staticCSP: true });

  app.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () =>
    app.swagger(),
  );
  return app;
}

function isCorsPreflightRoute(route: { method: string | string[]; url: string }): boolean {
  return route.method === 'OPTIONS' && route.url === '*';
}

/** Fastify takes a hop count at run time but not in its types; a function says the same thing. */
function toTrustProxy(
  setting: boolean | number | string[],
): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof setting !== 'number') return setting;
  return (_address, hop) => hop < setting;
}
