import { randomBytes, randomUUID } from 'node:crypto';
import { userMetadataModule } from '@keel/user-metadata';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import type { ServiceModule } from '../module/index.ts';
import { createTestApiKey } from '../testing/auth-helpers.ts';
import { buildTestApp, type TestApp } from '../testing/test-app.ts';
import { createTestDatabase, type TestDatabase } from '../testing/test-database.ts';
import { startTracing, type Tracing } from './tracing.ts';

// The global tracer provider can be registered once per process, so every
// tracing test lives in this file and shares one exporter.
const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let testDb: TestDatabase;
let testApp: TestApp;
let userId: string;
// A service caller: user-metadata's routes need credentials.
let authorization: string;

beforeAll(async () => {
  tracing = startTracing({ serviceName: 'test', exporter });
  testDb = await createTestDatabase(inject('keelTestDatabase'), { traceQueries: true });
  testApp = await buildTestApp({
    database: testDb.database,
    modules: [userMetadataModule],
    // Any endpoint turns on the server span hooks; the in-memory exporter receives the spans.
    // A long status cache keeps the key's lookup out of the spans the tests count.
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', AUTH_SESSION_CACHE_TTL_MS: '60000' },
  });
  authorization = await createTestApiKey(testApp, ['user-metadata:read', 'user-metadata:write']);
  const created = await testApp.app.inject({
    method: 'POST',
    url: '/user',
    headers: { authorization },
    payload: { name: 'Traced User', email: `traced-${randomUUID()}@example.com`, phone: '+14155552671' },
  });
  expect(created.statusCode).toBe(201);
  userId = created.json().user_id;
});

afterAll(async () => {
  await testApp?.close();
  await testDb?.drop();
  await tracing?.shutdown();
});

beforeEach(() => {
  exporter.reset();
});

function parentSpanIdOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

/** The server span ends in onResponse, which may finish just after inject resolves. */
async function finishedServerSpan(): Promise<ReadableSpan> {
  return vi.waitFor(() => {
    const servers = exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.SERVER);
    expect(servers).toHaveLength(1);
    return servers[0] as ReadableSpan;
  });
}

function databaseSpans(): ReadableSpan[] {
  return exporter
    .getFinishedSpans()
    .filter((span) => span.kind === SpanKind.CLIENT && span.attributes['db.system'] === 'postgresql');
}

describe('request tracing', () => {
  it('records one server span per request with query spans as its children in the same trace', async () => {
    const response = await testApp.app.inject({
      method: 'GET',
      url: `/user/${userId}`,
      headers: { authorization },
    });
    expect(response.statusCode).toBe(200);

    const server = await finishedServerSpan();
    expect(server.name).toBe('GET /user/:id');
    expect(server.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/user/:id',
      'http.response.status_code': 200,
      'keel.request_id': response.headers['x-request-id'],
    });
    expect(parentSpanIdOf(server)).toBeUndefined();

    const queries = databaseSpans();
    expect(queries.length).toBeGreaterThanOrEqual(1);
    for (const query of queries) {
      expect(query.spanContext().traceId).toBe(server.spanContext().traceId);
      expect(parentSpanIdOf(query)).toBe(server.spanContext().spanId);
      expect(String(query.attributes['db.query.text'])).toMatch(/^select/i);
    }
  });

  it('never records query parameters on query spans', async () => {
    await testApp.app.inject({ method: 'GET', url: `/user/${userId}`, headers: { authorization } });
    await finishedServerSpan();
    const recorded = JSON.stringify(databaseSpans().map((span) => span.attributes));
    expect(recorded).not.toContain(userId);
  });

  it('continues the trace of an incoming traceparent header', async () => {
    const traceId = randomBytes(16).toString('hex');
    const parentSpanId = randomBytes(8).toString('hex');
    const response = await testApp.app.inject({
      method: 'GET',
      url: `/user/${userId}`,
      headers: { authorization, traceparent: `00-${traceId}-${parentSpanId}-01` },
    });
    expect(response.statusCode).toBe(200);

    const server = await finishedServerSpan();
    expect(server.spanContext().traceId).toBe(traceId);
    expect(parentSpanIdOf(server)).toBe(parentSpanId);
    for (const query of databaseSpans()) expect(query.spanContext().traceId).toBe(traceId);
  });

  it('puts the trace id of the server span into a 404 problem document', async () => {
    const response = await testApp.app.inject({
      method: 'GET',
      url: `/user/${randomUUID()}`,
      headers: { authorization },
    });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    const server = await finishedServerSpan();
    expect(response.json()).toMatchObject({
      code: 'users.not_found',
      traceId: server.spanContext().traceId,
    });
  });

  it('puts the trace id into the problem document of an unmatched route and names the span unmatched', async () => {
    const response = await testApp.app.inject({ method: 'GET', url: '/no/such/route' });
    expect(response.statusCode).toBe(404);
    const server = await finishedServerSpan();
    expect(server.name).toBe('GET unmatched');
    expect(response.json()).toMatchObject({
      code: 'request.route_not_found',
      traceId: server.spanContext().traceId,
    });
  });

  it('writes the trace and span ids on the request log line', async () => {
    const response = await testApp.app.inject({
      method: 'GET',
      url: `/user/${userId}`,
      headers: { authorization },
    });
    const server = await finishedServerSpan();
    const requestLine = testApp.logs
      .lines()
      .find(
        (entry) => entry.msg === 'request completed' && entry.requestId === response.headers['x-request-id'],
      );
    expect(requestLine).toMatchObject({
      traceId: server.spanContext().traceId,
      spanId: server.spanContext().spanId,
    });
  });

  it('marks the server span as an error when the response is a 5xx', async () => {
    const failing: ServiceModule = {
      name: 'failing',
      schema: 'failing',
      routePrefix: '/failing',
      migrationsDirectory: '',
      register(app) {
        app.get('/explode', { config: { access: 'public' } }, async () => {
          throw new Error('boom');
        });
      },
    };
    const failingApp = await buildTestApp({
      database: testDb.database,
      modules: [failing],
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' },
    });
    try {
      const response = await failingApp.app.inject({ method: 'GET', url: '/failing/explode' });
      expect(response.statusCode).toBe(500);
      const server = await finishedServerSpan();
      expect(server.name).toBe('GET /failing/explode');
      expect(server.status.code).toBe(SpanStatusCode.ERROR);
      expect(server.attributes['http.response.status_code']).toBe(500);
      expect(response.json().traceId).toBe(server.spanContext().traceId);
    } finally {
      await failingApp.close();
    }
  });

  it('leaves the server span status unset when the response is a 4xx', async () => {
    await testApp.app.inject({ method: 'GET', url: `/user/${randomUUID()}`, headers: { authorization } });
    const server = await finishedServerSpan();
    expect(server.status.code).toBe(SpanStatusCode.UNSET);
  });
});
