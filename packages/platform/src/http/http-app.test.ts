import { Type } from 'typebox';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../errors/index.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { parseTrustProxy } from '../server/build-app.ts';
import { type CapturedLogs, captureLogs } from '../testing/test-app.ts';
import { type Authenticator, MissingAccessRuleError, type Principal } from './access.ts';
import { createHttpApp, type HttpAppOptions, type KeelApp } from './app.ts';
import { problemResponses } from './schemas.ts';

const HIDDEN_FAILURE = 'connection string postgres://admin:hunter2@db leaked';
const ALLOWED_ORIGIN = 'https://app.example.com';

const ThingBody = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    count: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
const ThingQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) });
const ThingParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

type BuiltApp = { app: KeelApp; logs: CapturedLogs; metrics: ReturnType<typeof createMetrics> };

const openApps: KeelApp[] = [];

afterEach(async () => {
  await Promise.all(openApps.splice(0).map((app) => app.close()));
});

function baseOptions(): { options: HttpAppOptions; logs: CapturedLogs } {
  const { stream, logs } = captureLogs();
  return {
    logs,
    options: {
      logger: createLogger({ level: 'info', destination: stream }),
      metrics: createMetrics({ collectProcessMetrics: false }),
      bodyLimitBytes: 2048,
      corsOrigins: [],
      trustProxy: false,
      tracing: false,
      openapi: { title: 'Test API', version: '0.0.0-test', description: 'Routes for platform tests' },
    },
  };
}

function registerTestRoutes(app: KeelApp): void {
  app.post(
    '/things',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'createThing',
        body: ThingBody,
        response: { 201: Type.Object({ name: Type.String() }), ...problemResponses(400, 413, 415) },
      },
    },
    async (request, reply) => reply.code(201).send({ name: request.body.name }),
  );
  app.get(
    '/things',
    { config: { access: 'public' }, schema: { operationId: 'listThings', querystring: ThingQuery } },
    async (request) => ({ limit: request.query.limit ?? 10 }),
  );
  app.get(
    '/things/:id',
    { config: { access: 'public' }, schema: { operationId: 'getThing', params: ThingParams } },
    async (request) => ({ id: request.params.id }),
  );
  app.get('/boom/app-error', { config: { access: 'public' } }, async () => {
    throw new AppError('rate_limited', 'test.slow_down', 'Slow down', {
      retryAfterSeconds: 30,
      headers: { 'x-test-header': 'present' },
      extensions: { limit: 5 },
    });
  });
  app.get('/boom/unknown', { config: { access: 'public' } }, async () => {
    throw new Error(HIDDEN_FAILURE);
  });
  app.get('/private', { config: { access: 'authenticated' } }, async (request) => ({
    principal: request.principal?.id,
  }));
  app.get('/reports', { config: { access: 'x:read' } }, async () => ({ ok: true }));
  app.get('/ip', { config: { access: 'public' } }, async (request) => ({ ip: request.ip }));
}

async function buildApp(overrides: Partial<HttpAppOptions> = {}): Promise<BuiltApp> {
  const { options, logs } = baseOptions();
  const app = await createHttpApp({ ...options, ...overrides });
  openApps.push(app);
  registerTestRoutes(app);
  await app.ready();
  return { app, logs, metrics: options.metrics };
}

function principal(id: string, permissions: string[]): Principal {
  return { id, kind: 'user', permissions: new Set(permissions), roles: [], isMfaAuthenticated: false };
}

/** Bearer tokens name fixed test principals; no header means no credentials. */
const testAuthenticator: Authenticator = async (request) => {
  const token = request.headers.authorization?.replace(/^Bearer /, '');
  if (token === 'reader') return principal('reader-1', ['x:read']);
  if (token === 'nobody') return principal('nobody-1', []);
  return undefined;
};

describe('validation errors', () => {
  it('answers 400 request.invalid with a /body pointer when a required property is missing', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'POST', url: '/things', payload: { count: 1 } });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = response.json();
    expect(body).toMatchObject({ status: 400, code: 'request.invalid', instance: '/things' });
    expect(body.errors).toContainEqual({ pointer: '/body/name', detail: expect.any(String) });
  });

  it('answers 400 with the extra property pointer when the body has an unknown property', async () => {
    const { app } = await buildApp();
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      payload: { name: 'bolt', colour: 'red' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('request.invalid');
    expect(response.json().errors).toContainEqual({ pointer: '/body/colour', detail: expect.any(String) });
  });

  it('answers 400 with the property pointer when a body property has the wrong type, without coercion', async () => {
    const { app } = await buildApp();
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      payload: { name: 'bolt', count: '12' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toContainEqual({ pointer: '/body/count', detail: expect.any(String) });
  });

  it('answers 400 with a /querystring pointer when a query parameter is invalid', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/things?limit=abc' });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('request.invalid');
    expect(response.json().errors).toContainEqual({
      pointer: '/querystring/limit',
      detail: expect.any(String),
    });
  });

  it.each(['1.5', '', '%2025', '0x10', '1e1', '12n', 'true'])(
    'answers 400 for limit=%s instead of reading a number into it',
    async (raw) => {
      const { app } = await buildApp();
      const response = await app.inject({ method: 'GET', url: `/things?limit=${raw}` });
      expect(response.statusCode).toBe(400);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(response.json().errors).toContainEqual({
        pointer: '/querystring/limit',
        detail: expect.any(String),
      });
    },
  );

  it('converts a valid query string value to its declared type', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/things?limit=25' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ limit: 25 });
  });

  it('answers 400 with a /params pointer when a path parameter is invalid', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/things/not-a-number' });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('request.invalid');
    expect(response.json().errors).toContainEqual({ pointer: '/params/id', detail: expect.any(String) });
  });

  it('accepts a valid body', async () => {
    const { app } = await buildApp();
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      payload: { name: 'bolt', count: 3 },
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toEqual({ name: 'bolt' });
  });
});

describe('error rendering', () => {
  it('renders a thrown AppError with its status, code, extensions, Retry-After and headers', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/boom/app-error' });
    expect(response.statusCode).toBe(429);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.headers['retry-after']).toBe('30');
    expect(response.headers['x-test-header']).toBe('present');
    expect(response.json()).toEqual({
      type: 'https://keel.dev/problems/test/slow_down',
      title: 'Too Many Requests',
      status: 429,
      detail: 'Slow down',
      instance: '/boom/app-error',
      code: 'test.slow_down',
      limit: 5,
    });
  });

  it('answers an unknown error with a generic 500 that reveals neither message nor stack', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/boom/unknown' });
    expect(response.statusCode).toBe(500);
    const body = response.json();
    expect(body).toMatchObject({ status: 500, code: 'internal', title: 'Internal Server Error' });
    expect(response.body).not.toContain(HIDDEN_FAILURE);
    expect(response.body).not.toContain('hunter2');
    expect(response.body).not.toMatch(/stack|at .*\.ts:\d+/);
  });

  it('logs the full unknown error at level error with the request id', async () => {
    const { app, logs } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/boom/unknown' });
    const requestId = response.headers['x-request-id'];
    const errorLines = logs.lines().filter((line) => line.level === 'error');
    const unhandled = errorLines.find((line) => JSON.stringify(line).includes(HIDDEN_FAILURE));
    expect(unhandled).toBeDefined();
    expect(unhandled?.requestId).toBe(requestId);
    expect(JSON.stringify(unhandled)).toContain('stack');
  });

  it('writes one request line with the error code when a request fails with a 4xx', async () => {
    const { app, logs } = await buildApp();
    await app.inject({ method: 'GET', url: '/boom/app-error' });
    const requestLines = logs.lines().filter((line) => line.msg === 'request completed');
    expect(requestLines).toHaveLength(1);
    expect(requestLines[0]).toMatchObject({
      level: 'info',
      route: '/boom/app-error',
      status: 429,
      error: { code: 'test.slow_down' },
    });
  });

  it('echoes a sane caller X-Request-Id on the response', async () => {
    const { app } = await buildApp();
    const response = await app.inject({
      method: 'GET',
      url: '/things',
      headers: { 'x-request-id': 'caller-id-1' },
    });
    expect(response.headers['x-request-id']).toBe('caller-id-1');
  });
});

describe('unmatched requests and body parsing', () => {
  it('answers 404 request.route_not_found for an unknown route', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/nowhere?x=1' });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ code: 'request.route_not_found', instance: '/nowhere' });
  });

  it('answers 405 request.method_not_allowed with an Allow header when the path exists for other methods', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'DELETE', url: '/things' });
    expect(response.statusCode).toBe(405);
    expect(response.json().code).toBe('request.method_not_allowed');
    const allowed = String(response.headers.allow)
      .split(',')
      .map((method) => method.trim());
    expect(allowed).toEqual(expect.arrayContaining(['GET', 'POST']));
    expect(allowed).not.toContain('DELETE');
  });

  it('answers 405 for a parametric path that exists for another method', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'PUT', url: '/things/7' });
    expect(response.statusCode).toBe(405);
    expect(String(response.headers.allow)).toContain('GET');
  });

  it('answers 400 request.malformed_json when the JSON body does not parse', async () => {
    const { app } = await buildApp();
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      headers: { 'content-type': 'application/json' },
      payload: '{"name": "bolt"',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('request.malformed_json');
  });

  it('answers 415 request.unsupported_media_type when the body is not JSON', async () => {
    const { app } = await buildApp();
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      headers: { 'content-type': 'text/plain' },
      payload: 'name=bolt',
    });
    expect(response.statusCode).toBe(415);
    expect(response.json().code).toBe('request.unsupported_media_type');
  });

  it('answers 413 request.body_too_large when the body exceeds the limit', async () => {
    const { app } = await buildApp({ bodyLimitBytes: 1024 });
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      payload: { name: 'x'.repeat(4096) },
    });
    expect(response.statusCode).toBe(413);
    expect(response.json().code).toBe('request.body_too_large');
  });
});

describe('access rules', () => {
  it('refuses to register a route that declares no access rule', async () => {
    const { options } = baseOptions();
    const app = await createHttpApp(options);
    openApps.push(app);
    expect(() => app.get('/undeclared', async () => ({ ok: true }))).toThrow(MissingAccessRuleError);
  });

  it('fails app.ready() when a plugin registers a route without an access rule', async () => {
    const { options } = baseOptions();
    const app = await createHttpApp(options);
    openApps.push(app);
    app.register(async (scope) => {
      scope.post('/undeclared', async () => ({ ok: true }));
    });
    await expect(app.ready()).rejects.toBeInstanceOf(MissingAccessRuleError);
  });

  it.each(['/private', '/reports'])(
    'answers 401 auth.unauthenticated on %s when no authenticator is configured',
    async (url) => {
      const { app } = await buildApp();
      const response = await app.inject({ method: 'GET', url, headers: { authorization: 'Bearer reader' } });
      expect(response.statusCode).toBe(401);
      expect(response.json().code).toBe('auth.unauthenticated');
      expect(response.headers['www-authenticate']).toBe('Bearer');
    },
  );

  it('answers 401 when the authenticator finds no credentials', async () => {
    const { app } = await buildApp({ authenticate: testAuthenticator });
    const response = await app.inject({ method: 'GET', url: '/reports' });
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('auth.unauthenticated');
  });

  it('answers 403 auth.forbidden when the principal lacks the permission', async () => {
    const { app } = await buildApp({ authenticate: testAuthenticator });
    const response = await app.inject({
      method: 'GET',
      url: '/reports',
      headers: { authorization: 'Bearer nobody' },
    });
    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('auth.forbidden');
  });

  it('answers 200 when the principal holds the permission', async () => {
    const { app } = await buildApp({ authenticate: testAuthenticator });
    const response = await app.inject({
      method: 'GET',
      url: '/reports',
      headers: { authorization: 'Bearer reader' },
    });
    expect(response.statusCode).toBe(200);
  });

  it('lets any authenticated principal through an authenticated route and exposes it to the handler', async () => {
    const { app } = await buildApp({ authenticate: testAuthenticator });
    const response = await app.inject({
      method: 'GET',
      url: '/private',
      headers: { authorization: 'Bearer nobody' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ principal: 'nobody-1' });
  });

  it('checks access before validating the body', async () => {
    const { options } = baseOptions();
    const app = await createHttpApp(options);
    openApps.push(app);
    app.post('/guarded', { config: { access: 'x:write' }, schema: { body: ThingBody } }, async () => ({}));
    await app.ready();
    const response = await app.inject({ method: 'POST', url: '/guarded', payload: { wrong: true } });
    expect(response.statusCode).toBe(401);
  });
});

describe('security headers and CORS', () => {
  it('sets helmet security headers on every response, errors included', async () => {
    const { app } = await buildApp();
    for (const url of ['/things', '/nowhere']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['content-security-policy']).toContain("default-src 'self'");
      expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(response.headers['x-frame-options']).toBeDefined();
    }
  });

  it('sends no CORS headers when no origins are configured', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/things', headers: { origin: ALLOWED_ORIGIN } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('allows a configured origin', async () => {
    const { app } = await buildApp({ corsOrigins: [ALLOWED_ORIGIN] });
    const response = await app.inject({ method: 'GET', url: '/things', headers: { origin: ALLOWED_ORIGIN } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
  });

  it('sends no allow-origin header to an origin that is not configured', async () => {
    const { app } = await buildApp({ corsOrigins: [ALLOWED_ORIGIN] });
    const response = await app.inject({
      method: 'GET',
      url: '/things',
      headers: { origin: 'https://evil.example.net' },
    });
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('still answers 404 for unknown routes and 405 for known ones when CORS is on', async () => {
    const { app } = await buildApp({ corsOrigins: [ALLOWED_ORIGIN] });
    const missing = await app.inject({ method: 'GET', url: '/nowhere', headers: { origin: ALLOWED_ORIGIN } });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('request.route_not_found');
    const wrongMethod = await app.inject({ method: 'DELETE', url: '/things' });
    expect(wrongMethod.statusCode).toBe(405);
    expect(String(wrongMethod.headers.allow)).toContain('POST');
  });

  it('answers a preflight request from a configured origin', async () => {
    const { app } = await buildApp({ corsOrigins: [ALLOWED_ORIGIN] });
    const response = await app.inject({
      method: 'OPTIONS',
      url: '/things',
      headers: {
        origin: ALLOWED_ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(response.statusCode).toBeLessThan(300);
    expect(response.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
    expect(String(response.headers['access-control-allow-methods'])).toContain('POST');
  });
});

describe('OpenAPI and docs', () => {
  it('serves an OpenAPI 3.1 document with the route operations and the Problem schema', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const document = response.json();
    expect(document.openapi).toMatch(/^3\.1\.\d+$/);
    expect(document.info).toMatchObject({ title: 'Test API', version: '0.0.0-test' });
    const operationIds = Object.values(document.paths as Record<string, Record<string, unknown>>).flatMap(
      (operations) =>
        Object.values(operations).map((operation) => (operation as { operationId?: string }).operationId),
    );
    expect(operationIds).toEqual(expect.arrayContaining(['createThing', 'listThings', 'getThing']));
    expect(document.components.schemas.Problem).toMatchObject({ type: 'object' });
    expect(document.components.schemas.Problem.properties).toHaveProperty('code');
    const badRequest = document.paths['/things'].post.responses['400'];
    expect(JSON.stringify(badRequest)).toContain('#/components/schemas/Problem');
  });

  it('leaves the OpenAPI route itself out of the document', async () => {
    const { app } = await buildApp();
    const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(document.paths).not.toHaveProperty('/openapi.json');
  });

  it('serves the documentation UI as HTML at /docs', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/docs' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
  });
});

describe('telemetry', () => {
  it('labels request metrics with the route template, never the raw path', async () => {
    const { app, metrics } = await buildApp();
    await app.inject({ method: 'GET', url: '/things/41' });
    await app.inject({ method: 'GET', url: '/scanner/probe-123' });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/http_request_duration_seconds_count\{[^}]*route="\/things\/:id"[^}]*\} 1/);
    expect(text).toMatch(/http_request_duration_seconds_count\{[^}]*route="unmatched"[^}]*\} 1/);
    expect(text).not.toContain('/things/41');
    expect(text).not.toContain('probe-123');
  });
});

describe('trust proxy', () => {
  it.each([
    ['false', false],
    ['', false],
    ['true', true],
    ['2', 2],
    ['10.0.0.0/8,127.0.0.1', ['10.0.0.0/8', '127.0.0.1']],
    [' 10.0.0.0/8 , loopback ', ['10.0.0.0/8', 'loopback']],
  ])('parseTrustProxy(%j) returns %j', (value, expected) => {
    expect(parseTrustProxy(value)).toEqual(expected);
  });

  const forwardingCases: [HttpAppOptions['trustProxy'], string][] = [
    [false, '127.0.0.1'],
    [true, '203.0.113.7'],
    [1, '198.51.100.9'],
    [2, '203.0.113.7'],
    [['127.0.0.1'], '198.51.100.9'],
  ];
  it.each(forwardingCases)(
    'resolves the client ip through X-Forwarded-For when trustProxy is %j',
    async (trustProxy, ip) => {
      const { app } = await buildApp({ trustProxy });
      const response = await app.inject({
        method: 'GET',
        url: '/ip',
        remoteAddress: '127.0.0.1',
        headers: { 'x-forwarded-for': '203.0.113.7, 198.51.100.9' },
      });
      expect(response.json()).toEqual({ ip });
    },
  );
});
