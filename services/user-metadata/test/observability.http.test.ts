import { randomUUID } from 'node:crypto';
import { buildTestApp, createTestApiKey, type TestApp, useTestApp } from '@keel/platform/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { userMetadataModule } from '../src/index.ts';
import {
  buildIdempotencyKey,
  buildUserInput,
  expectProblem,
  USER_METADATA_PERMISSIONS,
} from './factories.ts';

const harness = useTestApp({ modules: [userMetadataModule] });

/** `Authorization` of a service allowed to read and write; sent with every service request. */
let serviceKey: string;

beforeAll(async () => {
  serviceKey = await createTestApiKey(harness.testApp, USER_METADATA_PERMISSIONS);
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function completedLines(app: TestApp, requestId: string): Record<string, unknown>[] {
  return app.logs.lines().filter((line) => line.requestId === requestId && line.msg === 'request completed');
}

/** A request id no other request in this file uses, so its log lines can be picked out. */
function buildRequestId(): string {
  return `test-${randomUUID()}`;
}

type Sample = { name: string; labels: Record<string, string>; value: number };

function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1] as string] = label[2] as string;
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `labels`. */
function sampleValue(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const matching = samples.filter(
    (sample) =>
      sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
  expect(matching.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return matching[0]?.value;
}

describe('request ids', () => {
  it('returns a generated X-Request-Id when the caller sends none', async () => {
    const response = await harness.testApp.app.inject({ method: 'GET', url: '/health/live' });
    expect(response.headers['x-request-id']).toMatch(UUID);
  });

  it('reuses a sane incoming X-Request-Id', async () => {
    const requestId = `abc.DEF_123:${randomUUID()}`;
    const response = await harness.testApp.app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': requestId },
    });
    expect(response.headers['x-request-id']).toBe(requestId);
  });

  it('echoes the request id on error responses too', async () => {
    const requestId = buildRequestId();
    const response = await harness.testApp.app.inject({
      method: 'GET',
      url: `/user/${randomUUID()}`,
      headers: { 'x-request-id': requestId, authorization: serviceKey },
    });
    expectProblem(response, 404, 'users.not_found');
    expect(response.headers['x-request-id']).toBe(requestId);
  });

  it.each([
    ['too long', 'a'.repeat(129)],
    ['with spaces', 'my request id'],
    ['with a quote', 'id"injected'],
    ['with a newline escape', 'id\\nlevel:fatal'],
    ['non-ASCII', 'idé'],
  ])('replaces an insane incoming X-Request-Id (%s) with a generated one', async (_label, requestId) => {
    const response = await harness.testApp.app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': requestId },
    });
    expect(response.headers['x-request-id']).toMatch(UUID);
    expect(harness.testApp.logs.text()).not.toContain(requestId);
  });
});

describe('request log lines', () => {
  it('writes exactly one request completed line per request, with the route template and no raw id', async () => {
    const created = await harness.testApp.app.inject({
      method: 'POST',
      url: '/user',
      payload: buildUserInput(),
      headers: { authorization: serviceKey },
    });
    expect(created.statusCode).toBe(201);
    const userId = created.json().user_id as string;

    const requestId = buildRequestId();
    const response = await harness.testApp.app.inject({
      method: 'GET',
      url: `/user/${userId}`,
      headers: { 'x-request-id': requestId, authorization: serviceKey },
    });
    expect(response.statusCode).toBe(200);

    const lines = completedLines(harness.testApp, requestId);
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line).toMatchObject({
      level: 'info',
      requestId,
      method: 'GET',
      route: '/user/:id',
      status: 200,
      latencyMs: expect.any(Number),
    });
    expect(line?.latencyMs).toBeGreaterThanOrEqual(0);
    expect(line).not.toHaveProperty('error');
    expect(JSON.stringify(line)).not.toContain(userId);
    // Nothing else logged for this request repeats the raw path either.
    const everyLine = harness.testApp.logs.lines().filter((candidate) => candidate.requestId === requestId);
    expect(JSON.stringify(everyLine)).not.toContain(userId);
  });

  it('logs one line per request for a generated request id as well', async () => {
    const response = await harness.testApp.app.inject({
      method: 'POST',
      url: '/user',
      payload: buildUserInput(),
      headers: { authorization: serviceKey },
    });
    expect(response.statusCode).toBe(201);
    const lines = completedLines(harness.testApp, response.headers['x-request-id'] as string);
    expect(lines).toEqual([expect.objectContaining({ method: 'POST', route: '/user', status: 201 })]);
  });

  it.each([
    ['an unknown user', 'GET', `/user/${randomUUID()}`, undefined, 404, 'users.not_found', '/user/:id'],
    ['a malformed id', 'GET', '/user/not-a-uuid', undefined, 400, 'request.invalid', '/user/:id'],
    ['an unknown field', 'POST', '/user', { ...buildUserInput(), extra: 1 }, 400, 'request.invalid', '/user'],
    [
      'an invalid phone',
      'POST',
      '/user',
      buildUserInput({ phone: '+1 000' }),
      400,
      'users.phone_invalid',
      '/user',
    ],
    [
      'a wrong method',
      'DELETE',
      `/user/${randomUUID()}`,
      undefined,
      405,
      'request.method_not_allowed',
      'unmatched',
    ],
    [
      'an unknown route',
      'GET',
      `/nothing/${randomUUID()}`,
      undefined,
      404,
      'request.route_not_found',
      'unmatched',
    ],
  ] as const)(
    'logs a 4xx for %s with status, route template and error {code, message}',
    async (_label, method, path, payload, status, code, route) => {
      const requestId = buildRequestId();
      const response = await harness.testApp.app.inject({
        method,
        url: path,
        headers: { 'x-request-id': requestId, authorization: serviceKey },
        ...(payload === undefined ? {} : { payload }),
      });
      expectProblem(response, status, code);

      expect(completedLines(harness.testApp, requestId)).toEqual([
        expect.objectContaining({
          level: 'info',
          requestId,
          method,
          route,
          status,
          latencyMs: expect.any(Number),
          error: { code, message: expect.any(String) },
        }),
      ]);
    },
  );

  it('logs a 409 users.email_taken with its code', async () => {
    const input = buildUserInput();
    expect(
      (
        await harness.testApp.app.inject({
          method: 'POST',
          url: '/user',
          payload: input,
          headers: { authorization: serviceKey },
        })
      ).statusCode,
    ).toBe(201);
    const requestId = buildRequestId();
    const response = await harness.testApp.app.inject({
      method: 'POST',
      url: '/user',
      payload: input,
      headers: { 'x-request-id': requestId, authorization: serviceKey },
    });
    expectProblem(response, 409, 'users.email_taken');
    expect(completedLines(harness.testApp, requestId)).toEqual([
      expect.objectContaining({
        status: 409,
        route: '/user',
        error: { code: 'users.email_taken', message: expect.any(String) },
      }),
    ]);
  });

  it.each([
    ['no credentials', undefined, 401, 'auth.unauthenticated'],
    ['a key without user-metadata:write', ['user-metadata:read'], 403, 'auth.forbidden'],
  ] as const)(
    'logs a request refused for %s with its status, route template and code',
    async (_label, permissions, status, code) => {
      const authorization =
        permissions === undefined ? undefined : await createTestApiKey(harness.testApp, [...permissions]);
      const requestId = buildRequestId();
      const response = await harness.testApp.app.inject({
        method: 'POST',
        url: '/user',
        payload: buildUserInput(),
        headers: { 'x-request-id': requestId, ...(authorization === undefined ? {} : { authorization }) },
      });
      expectProblem(response, status, code);
      expect(completedLines(harness.testApp, requestId)).toEqual([
        expect.objectContaining({
          method: 'POST',
          route: '/user',
          status,
          error: { code, message: expect.any(String) },
        }),
      ]);
    },
  );

  it('never logs the Idempotency-Key or the Authorization header value', async () => {
    const key = `secret-idem-${randomUUID()}`;
    const token = serviceKey.slice('Bearer '.length);
    // The secret half of the key: logging it alone would leak the credential too.
    const secret = token.slice(token.lastIndexOf('_') + 1);
    const headers = { 'idempotency-key': key, authorization: serviceKey };
    const input = buildUserInput();

    const created = await harness.testApp.app.inject({
      method: 'POST',
      url: '/user',
      payload: input,
      headers,
    });
    expect(created.statusCode).toBe(201);
    const replayed = await harness.testApp.app.inject({
      method: 'POST',
      url: '/user',
      payload: input,
      headers,
    });
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    const reused = await harness.testApp.app.inject({
      method: 'POST',
      url: '/user',
      payload: buildUserInput(),
      headers,
    });
    expectProblem(reused, 422, 'idempotency.key_reused');
    const invalidKey = `bad key ${randomUUID()}`;
    const invalid = await harness.testApp.app.inject({
      method: 'POST',
      url: '/user',
      payload: buildUserInput(),
      headers: { ...headers, 'idempotency-key': invalidKey },
    });
    expectProblem(invalid, 400, 'idempotency.key_invalid');
    const fetched = await harness.testApp.app.inject({
      method: 'GET',
      url: created.headers.location as string,
      headers: { authorization: serviceKey },
    });
    expect(fetched.statusCode).toBe(200);
    // Refused credentials are no safer to log than accepted ones.
    const forgedToken = `secret-token-${randomUUID()}`;
    const refused = await harness.testApp.app.inject({
      method: 'GET',
      url: created.headers.location as string,
      headers: { authorization: `Bearer ${forgedToken}` },
    });
    expectProblem(refused, 401, 'auth.invalid_token');
    const wrongKey = `${serviceKey.slice(0, serviceKey.lastIndexOf('_'))}_${'Z'.repeat(43)}`;
    const refusedKey = await harness.testApp.app.inject({
      method: 'GET',
      url: created.headers.location as string,
      headers: { authorization: wrongKey },
    });
    expectProblem(refusedKey, 401, 'auth.invalid_api_key');

    const text = harness.testApp.logs.text();
    expect(text).toContain(created.headers['x-request-id'] as string);
    expect(text).toContain(refused.headers['x-request-id'] as string);
    expect(text).not.toContain(key);
    expect(text).not.toContain(invalidKey);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(forgedToken);
    expect(text).not.toContain('Z'.repeat(43));
  });

  it('never logs an unhandled error or a 5xx line for any request in this file', async () => {
    // Runs a few requests of its own so the assertion has something to look at.
    for (const url of ['/health/live', '/user/not-a-uuid', `/user/${randomUUID()}`]) {
      await harness.testApp.app.inject({ method: 'GET', url, headers: { authorization: serviceKey } });
    }
    const lines = harness.testApp.logs.lines();
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((line) => line.msg === 'unhandled error' || line.msg === 'request failed')).toEqual(
      [],
    );
    expect(lines.filter((line) => typeof line.status === 'number' && line.status >= 500)).toEqual([]);
  });
});

describe('GET /metrics', () => {
  it('counts service requests by route template with service="user-metadata"', async () => {
    // A fresh app has a fresh registry, so the counts below are exact.
    const app = await buildTestApp({ database: harness.testDb.database, modules: [userMetadataModule] });
    const headers = { authorization: serviceKey };
    try {
      const first = await app.app.inject({
        method: 'POST',
        url: '/user',
        payload: buildUserInput(),
        headers,
      });
      expect(first.statusCode).toBe(201);
      const userId = first.json().user_id as string;
      expect(
        (await app.app.inject({ method: 'POST', url: '/user', payload: buildUserInput(), headers }))
          .statusCode,
      ).toBe(201);
      expectProblem(
        await app.app.inject({ method: 'POST', url: '/user', payload: { name: 42 }, headers }),
        400,
        'request.invalid',
      );
      expect((await app.app.inject({ method: 'GET', url: `/user/${userId}`, headers })).statusCode).toBe(200);
      const missingId = randomUUID();
      expectProblem(
        await app.app.inject({ method: 'GET', url: `/user/${missingId}`, headers }),
        404,
        'users.not_found',
      );
      const probe = `/probe-${randomUUID()}`;
      expectProblem(await app.app.inject({ method: 'GET', url: probe }), 404, 'request.route_not_found');

      const response = await app.app.inject({ method: 'GET', url: '/metrics' });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
      const text = response.body;
      const samples = parseMetrics(text);
      const service = 'user-metadata';
      const post = { route: '/user', method: 'POST', service };
      const get = { route: '/user/:id', method: 'GET', service };

      expect(sampleValue(samples, 'total_requests', post)).toBe(3);
      expect(sampleValue(samples, 'success_count', post)).toBe(2);
      expect(sampleValue(samples, 'failure_count', { ...post, status_class: '4xx' })).toBe(1);
      expect(sampleValue(samples, 'total_requests', get)).toBe(2);
      expect(sampleValue(samples, 'success_count', get)).toBe(1);
      expect(sampleValue(samples, 'failure_count', { ...get, status_class: '4xx' })).toBe(1);
      expect(sampleValue(samples, 'request_latency_ms_count', post)).toBe(3);
      expect(sampleValue(samples, 'request_latency_ms_count', get)).toBe(2);
      expect(sampleValue(samples, 'request_latency_ms_bucket', { ...get, le: '+Inf' })).toBe(2);
      expect(
        sampleValue(samples, 'http_request_duration_seconds_count', { ...post, status_class: '2xx' }),
      ).toBe(2);
      expect(
        sampleValue(samples, 'http_request_duration_seconds_count', { ...post, status_class: '4xx' }),
      ).toBe(1);
      expect(
        sampleValue(samples, 'http_request_duration_seconds_count', {
          route: 'unmatched',
          method: 'GET',
          status_class: '4xx',
        }),
      ).toBe(1);

      // Raw paths never become label values: ids and probes would explode cardinality.
      expect(text).not.toContain(userId);
      expect(text).not.toContain(missingId);
      expect(text).not.toContain(probe);
      const serviceRoutes = new Set(
        samples.filter((sample) => sample.labels.service === service).map((sample) => sample.labels.route),
      );
      expect([...serviceRoutes].sort()).toEqual(['/user', '/user/:id']);
    } finally {
      await app.close();
    }
  });

  it('exposes the database pool and circuit breaker gauges', async () => {
    await harness.testApp.app.inject({ method: 'GET', url: '/health/ready' });
    const response = await harness.testApp.app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    const text = response.body;
    expect(text).toContain('# TYPE keel_db_pool_total gauge');
    expect(text).toContain('# TYPE keel_db_circuit_state gauge');
    const samples = parseMetrics(text);
    expect(sampleValue(samples, 'keel_db_circuit_state', {})).toBe(0);
    expect(sampleValue(samples, 'keel_db_pool_total', {})).toBeGreaterThanOrEqual(0);
  });
});

describe('health', () => {
  it('answers /health/live with 200', async () => {
    const response = await harness.testApp.app.inject({ method: 'GET', url: '/health/live' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('answers /health/ready with 200 and every check ok', async () => {
    const response = await harness.testApp.app.inject({ method: 'GET', url: '/health/ready' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      status: 'ready',
      checks: {
        database: expect.objectContaining({ status: 'ok' }),
        migrations: expect.objectContaining({ status: 'ok' }),
        breaker: { status: 'ok', detail: 'closed' },
      },
    });
  });

  it('does not log credentials sent to health probes', async () => {
    const key = buildIdempotencyKey();
    await harness.testApp.app.inject({
      method: 'GET',
      url: '/health/ready',
      headers: { authorization: 'Bearer secret-token-123', 'idempotency-key': key },
    });
    expect(harness.testApp.logs.text()).not.toContain('secret-token-123');
    expect(harness.testApp.logs.text()).not.toContain(key);
  });
});
