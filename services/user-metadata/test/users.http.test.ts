import { randomUUID } from 'node:crypto';
import { buildTestApp, useTestApp } from '@keel/platform/testing';
import { describe, expect, it } from 'vitest';
import { userMetadataModule } from '../src/index.ts';
import { buildIdempotencyKey, buildUserInput, expectNoInternals, expectProblem } from './factories.ts';

const harness = useTestApp({ modules: [userMetadataModule] });

function createUser(payload: unknown, headers: Record<string, string> = {}) {
  return harness.testApp.app.inject({ method: 'POST', url: '/user', payload: payload as object, headers });
}

function postRaw(body: string, contentType: string | undefined) {
  return harness.testApp.app.inject({
    method: 'POST',
    url: '/user',
    body,
    headers: contentType === undefined ? {} : { 'content-type': contentType },
  });
}

async function countUsersWithEmail(email: string): Promise<number> {
  const result = await harness.testDb.database.pool.query<{ count: string }>(
    'select count(*) from user_metadata.users where lower(email) = lower($1)',
    [email],
  );
  return Number(result.rows[0]?.count);
}

describe('POST /user (createUser)', () => {
  it('creates a user with a server-assigned id and returns 201 with Location', async () => {
    const input = buildUserInput({ name: '  Ada Lovelace  ', phone: '+44 20 7183 8750' });
    const response = await createUser(input);
    expect(response.statusCode).toBe(201);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const body = response.json();
    expect(body).toEqual({
      user_id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
      name: 'Ada Lovelace',
      email: input.email,
      phone: '+442071838750',
      created_at: expect.any(String),
    });
    expect(response.headers.location).toBe(`/user/${body.user_id}`);
  });

  it('returns created_at as an ISO 8601 UTC timestamp close to now', async () => {
    const before = Date.now();
    const response = await createUser(buildUserInput());
    const after = Date.now();
    expect(response.statusCode).toBe(201);
    const { created_at: createdAt } = response.json();
    expect(createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(new Date(createdAt).toISOString()).toBe(createdAt);
    expect(Date.parse(createdAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(createdAt)).toBeLessThanOrEqual(after + 1000);
  });

  it.each([
    ['+1 (415) 555-2671', '+14155552671'],
    ['+1-415-555-2671', '+14155552671'],
    ['  +14155552671  ', '+14155552671'],
    ['+33 1 42 68 53 00', '+33142685300'],
    ['+49 30 901820', '+4930901820'],
  ])('stores the phone %j as E.164 %s', async (phone, expected) => {
    const response = await createUser(buildUserInput({ phone }));
    expect(response.statusCode).toBe(201);
    expect(response.json().phone).toBe(expected);
  });

  it('stores exactly what it returns (database row matches the response)', async () => {
    const input = buildUserInput({ name: '\u00a0 Zoë Ñandú \u2003', phone: '+44 7911 123456' });
    const response = await createUser(input);
    expect(response.statusCode).toBe(201);
    const body = response.json();
    const { rows } = await harness.testDb.database.pool.query(
      'select id, name, email, phone, created_at from user_metadata.users where id = $1',
      [body.user_id],
    );
    expect(rows).toEqual([
      {
        id: body.user_id,
        name: 'Zoë Ñandú',
        email: input.email,
        phone: '+447911123456',
        created_at: new Date(body.created_at),
      },
    ]);
  });

  it('accepts a name of exactly 200 characters after trimming', async () => {
    const name = 'a'.repeat(200);
    const response = await createUser(buildUserInput({ name: `  ${name}  ` }));
    expect(response.statusCode).toBe(201);
    expect(response.json().name).toBe(name);
  });
});

describe('GET /user/:id (getUser)', () => {
  it('returns 200 with the user as created (round trip)', async () => {
    const created = await createUser(buildUserInput());
    expect(created.statusCode).toBe(201);
    const response = await harness.testApp.app.inject({
      method: 'GET',
      url: created.headers.location as string,
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.json()).toEqual(created.json());
  });

  it('returns 404 users.not_found for a well-formed id that does not exist', async () => {
    const response = await harness.testApp.app.inject({ method: 'GET', url: `/user/${randomUUID()}` });
    expectProblem(response, 404, 'users.not_found');
  });

  it.each([
    ['not-a-uuid', 'not-a-uuid'],
    ['a uuid without dashes', '0123456789abcdef0123456789abcdef'],
    ['a uuid with a trailing character', `${randomUUID()}x`],
    ['a number', '12345'],
    ['SQL', encodeURIComponent("' or 1=1 --")],
    ['a NUL byte', '%00'],
    ['invalid percent-encoding', '%E0%A4%A'],
    ['a path traversal', '..%2F..%2Fetc%2Fpasswd'],
  ])('returns 400 request.invalid for a malformed id (%s)', async (_label, id) => {
    const response = await harness.testApp.app.inject({ method: 'GET', url: `/user/${id}` });
    const problem = expectProblem(response, 400, 'request.invalid');
    if (problem.errors !== undefined) {
      expect(problem.errors).toEqual([expect.objectContaining({ pointer: '/params/id' })]);
    }
  });

  it('returns 400 with pointer /params/id for a malformed id', async () => {
    const response = await harness.testApp.app.inject({ method: 'GET', url: '/user/not-a-uuid' });
    const problem = expectProblem(response, 400, 'request.invalid');
    expect(problem.errors).toEqual([expect.objectContaining({ pointer: '/params/id' })]);
  });

  it('answers an over-long id with a 4xx problem, never a 5xx', async () => {
    const response = await harness.testApp.app.inject({ method: 'GET', url: `/user/${'a'.repeat(5000)}` });
    expect(response.statusCode).toBeGreaterThanOrEqual(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expectNoInternals(response);
  });
});

describe('bad input to createUser', () => {
  it('rejects an unknown field with 400 request.invalid pointing at /body/<field>', async () => {
    const response = await createUser({ ...buildUserInput(), role: 'admin' });
    const problem = expectProblem(response, 400, 'request.invalid');
    expect(problem.errors).toContainEqual(expect.objectContaining({ pointer: '/body/role' }));
  });

  it.each(['name', 'email', 'phone'] as const)(
    'rejects a body missing %s with 400 request.invalid pointing at it',
    async (field) => {
      const { [field]: _omitted, ...input } = buildUserInput();
      const response = await createUser(input);
      const problem = expectProblem(response, 400, 'request.invalid');
      expect(problem.errors).toContainEqual(expect.objectContaining({ pointer: `/body/${field}` }));
    },
  );

  it.each([
    'not-an-email',
    'missing-at.example.com',
    '@example.com',
    'user@',
    'user@@example.com',
    'user @example.com',
    ' user@example.com',
    'user@example.com\u0000',
    `${'a'.repeat(250)}@example.com`,
  ])('rejects the bad email %j with 400 request.invalid at /body/email', async (email) => {
    const response = await createUser(buildUserInput({ email }));
    const problem = expectProblem(response, 400, 'request.invalid');
    expect(problem.errors).toContainEqual(expect.objectContaining({ pointer: '/body/email' }));
  });

  it.each([
    'not a phone',
    '+1 000',
    '+1 555 000 0000 0000',
    '+999 1234567',
    '4155552671',
    '+1415555267a',
    '\u0000\u0000\u0000',
  ])('rejects the invalid phone %j with 400 users.phone_invalid', async (phone) => {
    const response = await createUser(buildUserInput({ phone }));
    const problem = expectProblem(response, 400, 'users.phone_invalid');
    expect(problem.errors).toEqual([expect.objectContaining({ pointer: '/body/phone' })]);
  });

  it.each(['', 'ab', 'x'.repeat(33)])(
    'rejects a phone of the wrong length (%j) with 400 request.invalid',
    async (phone) => {
      const response = await createUser(buildUserInput({ phone }));
      const problem = expectProblem(response, 400, 'request.invalid');
      expect(problem.errors).toContainEqual(expect.objectContaining({ pointer: '/body/phone' }));
    },
  );

  it.each([' ', '     ', '\u00a0\u2003 '])(
    'rejects a name that is blank after trimming (%j) with 400 users.name_invalid',
    async (name) => {
      const response = await createUser(buildUserInput({ name }));
      const problem = expectProblem(response, 400, 'users.name_invalid');
      expect(problem.errors).toEqual([expect.objectContaining({ pointer: '/body/name' })]);
    },
  );

  it('rejects an empty name with 400 request.invalid', async () => {
    const response = await createUser(buildUserInput({ name: '' }));
    const problem = expectProblem(response, 400, 'request.invalid');
    expect(problem.errors).toContainEqual(expect.objectContaining({ pointer: '/body/name' }));
  });

  it('rejects a name longer than 200 characters after trimming with 400 users.name_invalid', async () => {
    const response = await createUser(buildUserInput({ name: ` ${'a'.repeat(201)} ` }));
    expectProblem(response, 400, 'users.name_invalid');
  });

  it('rejects a name longer than the schema allows with 400 request.invalid', async () => {
    const response = await createUser(buildUserInput({ name: 'a'.repeat(401) }));
    const problem = expectProblem(response, 400, 'request.invalid');
    expect(problem.errors).toContainEqual(expect.objectContaining({ pointer: '/body/name' }));
  });

  it.each(['line\nbreak', 'nul\u0000byte', 'escape\u001b[31m', 'delete\u007f'])(
    'rejects a name with a control character (%j) with 400 request.invalid',
    async (name) => {
      const response = await createUser(buildUserInput({ name }));
      const problem = expectProblem(response, 400, 'request.invalid');
      expect(problem.errors).toContainEqual(expect.objectContaining({ pointer: '/body/name' }));
    },
  );

  it.each([
    ['name', 42],
    ['name', null],
    ['name', ['Ada']],
    ['name', { first: 'Ada' }],
    ['email', 42],
    ['email', true],
    ['phone', 14155552671],
    ['phone', null],
  ] as const)('rejects %s of the wrong type (%j) with 400 request.invalid', async (field, value) => {
    const response = await createUser({ ...buildUserInput(), [field]: value });
    const problem = expectProblem(response, 400, 'request.invalid');
    expect(problem.errors).toContainEqual(expect.objectContaining({ pointer: `/body/${field}` }));
  });

  it.each([
    ['an array', '[]'],
    ['a string', '"Ada"'],
    ['a number', '42'],
    ['null', 'null'],
    ['an empty object', '{}'],
  ])('rejects a JSON body that is %s with 400 request.invalid', async (_label, body) => {
    const response = await postRaw(body, 'application/json');
    expectProblem(response, 400, 'request.invalid');
  });

  it.each([
    ['truncated JSON', '{"name": "Ada"'],
    ['single quotes', "{'name': 'Ada'}"],
    ['a trailing comma', '{"name": "Ada",}'],
    ['plain text', 'name=Ada'],
  ])('rejects %s with 400 request.malformed_json', async (_label, body) => {
    const response = await postRaw(body, 'application/json');
    expectProblem(response, 400, 'request.malformed_json');
  });

  it.each([
    ['__proto__', '{"__proto__": {"isAdmin": true}, "name": "Ada", "email": "a@example.com", "phone": "+1"}'],
    ['constructor.prototype', '{"constructor": {"prototype": {"isAdmin": true}}}'],
  ])('rejects a body with a %s key with 400, never a 5xx', async (_label, body) => {
    const response = await postRaw(body, 'application/json');
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expectNoInternals(response);
  });

  it('rejects an empty body sent as JSON with 400 request.empty_body', async () => {
    const response = await postRaw('', 'application/json');
    expectProblem(response, 400, 'request.empty_body');
  });

  it('rejects a request without any body or content type with 400 request.invalid', async () => {
    const response = await harness.testApp.app.inject({ method: 'POST', url: '/user' });
    expectProblem(response, 400, 'request.invalid');
  });

  it.each([
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
    'application/octet-stream',
  ])('rejects a %s body with 415 request.unsupported_media_type', async (contentType) => {
    const response = await postRaw(JSON.stringify(buildUserInput()), contentType);
    expectProblem(response, 415, 'request.unsupported_media_type');
  });

  it('accepts application/json with a charset parameter', async () => {
    const response = await postRaw(JSON.stringify(buildUserInput()), 'application/json; charset=utf-8');
    expect(response.statusCode).toBe(201);
  });

  it('writes no row for any rejected body', async () => {
    const input = buildUserInput({ phone: '+1 000' });
    expectProblem(await createUser(input), 400, 'users.phone_invalid');
    expectProblem(await createUser({ ...input, phone: '+14155552671', role: 'x' }), 400, 'request.invalid');
    expect(await countUsersWithEmail(input.email)).toBe(0);
  });
});

describe('body size limit', () => {
  it('rejects a body over BODY_LIMIT_BYTES with 413 request.body_too_large', async () => {
    const smallApp = await buildTestApp({
      database: harness.testDb.database,
      modules: [userMetadataModule],
      env: { BODY_LIMIT_BYTES: '2048' },
    });
    try {
      const input = buildUserInput({ name: 'a'.repeat(3000) });
      const response = await smallApp.app.inject({ method: 'POST', url: '/user', payload: input });
      expectProblem(response, 413, 'request.body_too_large');
      expect(await countUsersWithEmail(input.email)).toBe(0);

      const fits = await smallApp.app.inject({ method: 'POST', url: '/user', payload: buildUserInput() });
      expect(fits.statusCode).toBe(201);
    } finally {
      await smallApp.close();
    }
  });
});

describe('routing errors', () => {
  it('answers DELETE /user/:id with 405 request.method_not_allowed and an Allow header', async () => {
    const response = await harness.testApp.app.inject({ method: 'DELETE', url: `/user/${randomUUID()}` });
    expectProblem(response, 405, 'request.method_not_allowed');
    const allowed = String(response.headers.allow)
      .split(',')
      .map((method) => method.trim());
    expect(allowed).toContain('GET');
    expect(allowed).not.toContain('DELETE');
  });

  it.each([
    ['PUT', '/user'],
    ['GET', '/user'],
    ['PATCH', `/user/${randomUUID()}`],
  ])('answers %s %s with 405 request.method_not_allowed', async (method, url) => {
    const response = await harness.testApp.app.inject({ method: method as 'PUT', url });
    expectProblem(response, 405, 'request.method_not_allowed');
    expect(response.headers.allow).toBeDefined();
  });

  it.each(['/users', '/nope', `/user/${randomUUID()}/extra`, '/'])(
    'answers an unknown route (%s) with 404 request.route_not_found',
    async (url) => {
      const response = await harness.testApp.app.inject({ method: 'GET', url });
      expectProblem(response, 404, 'request.route_not_found');
    },
  );
});

describe('duplicate emails without an Idempotency-Key', () => {
  it('refuses the same email twice with 409 users.email_taken and the first user location', async () => {
    const input = buildUserInput();
    const first = await createUser(input);
    expect(first.statusCode).toBe(201);

    const second = await createUser({ ...input, name: 'Someone Else' });
    const problem = expectProblem(second, 409, 'users.email_taken');
    expect(problem.location).toBe(first.headers.location);
    expect(second.headers.location).toBe(first.headers.location);
    expect(await countUsersWithEmail(input.email)).toBe(1);
  });

  it('treats emails that differ only in case as the same email', async () => {
    const input = buildUserInput({ email: `Mixed.Case-${randomUUID()}@Example.com` });
    const first = await createUser(input);
    expect(first.statusCode).toBe(201);

    const second = await createUser({ ...input, email: input.email.toUpperCase() });
    const problem = expectProblem(second, 409, 'users.email_taken');
    expect(problem.location).toBe(first.headers.location);
    expect(second.headers.location).toBe(first.headers.location);

    const third = await createUser({ ...input, email: input.email.toLowerCase() });
    expectProblem(third, 409, 'users.email_taken');
    expect(await countUsersWithEmail(input.email)).toBe(1);
  });

  it('lets exactly one of 50 concurrent creates with one email win, with or without distinct keys', async () => {
    const input = buildUserInput();
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        createUser(
          { ...input, email: index % 3 === 0 ? input.email.toUpperCase() : input.email },
          index % 2 === 0 ? { 'idempotency-key': buildIdempotencyKey() } : {},
        ),
      ),
    );

    const winners = responses.filter((response) => response.statusCode === 201);
    expect(winners).toHaveLength(1);
    const winnerLocation = winners[0]?.headers.location;
    for (const response of responses.filter((candidate) => candidate.statusCode !== 201)) {
      const problem = expectProblem(response, 409, 'users.email_taken');
      expect(problem.location).toBe(winnerLocation);
    }
    expect(await countUsersWithEmail(input.email)).toBe(1);
  });
});
