import { randomUUID } from 'node:crypto';
import {
  buildTestApp,
  createTestAccount,
  createTestApiKey,
  signIn,
  useTestApp,
} from '@keel/platform/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { userMetadataModule } from '../src/index.ts';
import {
  buildIdempotencyKey,
  buildUserInput,
  expectNoInternals,
  expectProblem,
  USER_METADATA_PERMISSIONS,
} from './factories.ts';

// Rate limiting stays on (the production default): the file stays well under
// the per-caller budget, and the limiter must not get in the way of normal use.
const harness = useTestApp({ modules: [userMetadataModule] });

/** `Authorization` of a service allowed to read and write, as services call. */
let writerKey: string;

beforeAll(async () => {
  writerKey = await createTestApiKey(harness.testApp, USER_METADATA_PERMISSIONS);
});

function createUser(payload: unknown, headers: Record<string, string> = {}) {
  return harness.testApp.app.inject({
    method: 'POST',
    url: '/user',
    payload: payload as object,
    headers: { authorization: writerKey, ...headers },
  });
}

function getUser(url: string) {
  return harness.testApp.app.inject({ method: 'GET', url, headers: { authorization: writerKey } });
}

function postRaw(body: string, contentType: string | undefined) {
  return harness.testApp.app.inject({
    method: 'POST',
    url: '/user',
    body,
    headers: {
      authorization: writerKey,
      ...(contentType === undefined ? {} : { 'content-type': contentType }),
    },
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
    const response = await getUser(created.headers.location as string);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.json()).toEqual(created.json());
  });

  it('returns 404 users.not_found for a well-formed id that does not exist', async () => {
    const response = await getUser(`/user/${randomUUID()}`);
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
    const response = await getUser(`/user/${id}`);
    const problem = expectProblem(response, 400, 'request.invalid');
    if (problem.errors !== undefined) {
      expect(problem.errors).toEqual([expect.objectContaining({ pointer: '/params/id' })]);
    }
  });

  it('returns 400 with pointer /params/id for a malformed id', async () => {
    const response = await getUser('/user/not-a-uuid');
    const problem = expectProblem(response, 400, 'request.invalid');
    expect(problem.errors).toEqual([expect.objectContaining({ pointer: '/params/id' })]);
  });

  it('answers an over-long id with a 4xx problem, never a 5xx', async () => {
    const response = await getUser(`/user/${'a'.repeat(5000)}`);
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
    const response = await harness.testApp.app.inject({
      method: 'POST',
      url: '/user',
      headers: { authorization: writerKey },
    });
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
      const response = await smallApp.app.inject({
        method: 'POST',
        url: '/user',
        payload: input,
        headers: { authorization: writerKey },
      });
      expectProblem(response, 413, 'request.body_too_large');
      expect(await countUsersWithEmail(input.email)).toBe(0);

      const fits = await smallApp.app.inject({
        method: 'POST',
        url: '/user',
        payload: buildUserInput(),
        headers: { authorization: writerKey },
      });
      expect(fits.statusCode).toBe(201);
    } finally {
      await smallApp.close();
    }
  });
});

describe('routing errors', () => {
  it('answers DELETE /user/:id with 405 request.method_not_allowed and an Allow header', async () => {
    const response = await harness.testApp.app.inject({
      method: 'DELETE',
      url: `/user/${randomUUID()}`,
      headers: { authorization: writerKey },
    });
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
    const response = await harness.testApp.app.inject({
      method: method as 'PUT',
      url,
      headers: { authorization: writerKey },
    });
    expectProblem(response, 405, 'request.method_not_allowed');
    expect(response.headers.allow).toBeDefined();
  });

  it.each(['/users', '/nope', `/user/${randomUUID()}/extra`, '/'])(
    'answers an unknown route (%s) with 404 request.route_not_found',
    async (url) => {
      const response = await getUser(url);
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

describe('authorization', () => {
  /** `Authorization` of a service that may only read. */
  let readerKey: string;

  beforeAll(async () => {
    readerKey = await createTestApiKey(harness.testApp, ['user-metadata:read']);
  });

  function postAs(authorization: string | undefined, payload: object = buildUserInput()) {
    return harness.testApp.app.inject({
      method: 'POST',
      url: '/user',
      payload,
      headers: authorization === undefined ? {} : { authorization },
    });
  }

  function getAs(authorization: string | undefined, url: string) {
    return harness.testApp.app.inject({
      method: 'GET',
      url,
      headers: authorization === undefined ? {} : { authorization },
    });
  }

  /** A stored user (created with the writer key) for read checks. */
  async function storeUser(): Promise<{ location: string; body: string; email: string }> {
    const input = buildUserInput();
    const created = await createUser(input);
    expect(created.statusCode).toBe(201);
    return { location: created.headers.location as string, body: created.body, email: input.email };
  }

  function base64url(value: unknown): string {
    return Buffer.from(JSON.stringify(value)).toString('base64url');
  }

  /** JWT-shaped but signed by nobody Keel knows. */
  function buildForgedJwt(header: Record<string, unknown>): string {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const claims = {
      iss: 'keel',
      aud: 'keel-api',
      sub: randomUUID(),
      sid: randomUUID(),
      iat: nowSeconds,
      exp: nowSeconds + 600,
    };
    return `${base64url(header)}.${base64url(claims)}.${Buffer.from('forged-signature').toString('base64url')}`;
  }

  async function countIdempotencyRows(key: string): Promise<number> {
    const result = await harness.testDb.database.pool.query<{ count: string }>(
      'select count(*) from platform.idempotency_keys where key = $1',
      [key],
    );
    return Number(result.rows[0]?.count);
  }

  it('rejects POST /user without an Authorization header with 401 auth.unauthenticated and a Bearer challenge', async () => {
    const input = buildUserInput();
    const response = await postAs(undefined, input);
    expectProblem(response, 401, 'auth.unauthenticated');
    expect(response.headers['www-authenticate']).toBe('Bearer');
    expect(await countUsersWithEmail(input.email)).toBe(0);
  });

  it('rejects GET /user/:id without an Authorization header with 401 auth.unauthenticated and a Bearer challenge', async () => {
    const stored = await storeUser();
    const response = await getAs(undefined, stored.location);
    expectProblem(response, 401, 'auth.unauthenticated');
    expect(response.headers['www-authenticate']).toBe('Bearer');
    expect(response.body).not.toContain(stored.email);
  });

  it('rejects an unauthenticated request before reading its body: malformed JSON gets 401, not 400', async () => {
    const response = await harness.testApp.app.inject({
      method: 'POST',
      url: '/user',
      body: '{"name": "Ada"',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(response, 401, 'auth.unauthenticated');
  });

  it.each([
    ['a Basic credential', 'Basic dXNlcjpwYXNz'],
    ['Bearer without a token', 'Bearer'],
    ['an unknown scheme', 'Token abc'],
  ])(
    'rejects an Authorization header with %s as no credentials: 401 auth.unauthenticated',
    async (_label, authorization) => {
      const stored = await storeUser();
      expectProblem(await postAs(authorization), 401, 'auth.unauthenticated');
      expectProblem(await getAs(authorization, stored.location), 401, 'auth.unauthenticated');
    },
  );

  it.each([
    ['a token that is not a JWT', () => 'Bearer not-a-jwt'],
    ['a JWT with garbage segments', () => 'Bearer eyJnYXJiYWdl.eyJnYXJiYWdl.Z2FyYmFnZQ'],
    [
      'a JWT signed with an unknown key',
      () => `Bearer ${buildForgedJwt({ alg: 'EdDSA', typ: 'JWT', kid: 'not-a-keel-key' })}`,
    ],
    [
      'an unsigned (alg none) JWT',
      () => `Bearer ${buildForgedJwt({ alg: 'none', typ: 'JWT' }).replace(/[^.]+$/, '')}`,
    ],
  ])('rejects %s with 401 auth.invalid_token on both routes', async (_label, buildAuthorization) => {
    const stored = await storeUser();
    const input = buildUserInput();
    const post = await postAs(buildAuthorization(), input);
    expectProblem(post, 401, 'auth.invalid_token');
    expect(post.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(await countUsersWithEmail(input.email)).toBe(0);

    const get = await getAs(buildAuthorization(), stored.location);
    expectProblem(get, 401, 'auth.invalid_token');
    expect(get.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(get.body).not.toContain(stored.email);
  });

  it('rejects a real access token whose claims were altered with 401 auth.invalid_token', async () => {
    const writer = await signIn(
      harness.testApp,
      await createTestAccount(harness.testApp, { roles: ['user-metadata:writer'] }),
    );
    const [header, payload, signature] = writer.accessToken.split('.');
    const claims = JSON.parse(Buffer.from(payload as string, 'base64url').toString('utf8'));
    const altered = `${header}.${base64url({ ...claims, sub: randomUUID() })}.${signature}`;
    const stored = await storeUser();
    expectProblem(await getAs(`Bearer ${altered}`, stored.location), 401, 'auth.invalid_token');
    // The genuine token still works, so the refusal is the alteration's doing.
    expect((await getAs(writer.authorization, stored.location)).statusCode).toBe(200);
  });

  it('rejects a malformed API key and one with a wrong secret with 401 auth.invalid_api_key', async () => {
    const stored = await storeUser();
    const wrongSecret = writerKey.replace(/_[A-Za-z0-9_-]{43}$/, `_${'A'.repeat(43)}`);
    expect(wrongSecret).not.toBe(writerKey);
    for (const authorization of ['Bearer keel_garbage', wrongSecret]) {
      const input = buildUserInput();
      expectProblem(await postAs(authorization, input), 401, 'auth.invalid_api_key');
      expect(await countUsersWithEmail(input.email)).toBe(0);
      expectProblem(await getAs(authorization, stored.location), 401, 'auth.invalid_api_key');
    }
  });

  it('rejects POST /user from an API key with only user-metadata:read with 403 auth.forbidden', async () => {
    const input = buildUserInput();
    expectProblem(await postAs(readerKey, input), 403, 'auth.forbidden');
    expect(await countUsersWithEmail(input.email)).toBe(0);
  });

  it('serves GET /user/:id to an API key with only user-metadata:read', async () => {
    const stored = await storeUser();
    const response = await getAs(readerKey, stored.location);
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe(stored.body);
  });

  it('rejects a forbidden caller before reading its body: an invalid body gets 403, not 400', async () => {
    expectProblem(await postAs(readerKey, { name: 42 }), 403, 'auth.forbidden');
  });

  it('serves GET and rejects POST with 403 auth.forbidden for a signed-in user-metadata:reader', async () => {
    const reader = await signIn(
      harness.testApp,
      await createTestAccount(harness.testApp, { roles: ['user-metadata:reader'] }),
    );
    const stored = await storeUser();
    const fetched = await getAs(reader.authorization, stored.location);
    expect(fetched.statusCode).toBe(200);
    expect(fetched.body).toBe(stored.body);

    const input = buildUserInput();
    expectProblem(await postAs(reader.authorization, input), 403, 'auth.forbidden');
    expect(await countUsersWithEmail(input.email)).toBe(0);
  });

  it('serves GET and POST for a signed-in user-metadata:writer', async () => {
    const writer = await signIn(
      harness.testApp,
      await createTestAccount(harness.testApp, { roles: ['user-metadata:writer'] }),
    );
    const input = buildUserInput();
    const created = await postAs(writer.authorization, input);
    expect(created.statusCode).toBe(201);
    expect(await countUsersWithEmail(input.email)).toBe(1);

    const fetched = await getAs(writer.authorization, created.headers.location as string);
    expect(fetched.statusCode).toBe(200);
    expect(fetched.body).toBe(created.body);
  });

  it('rejects both routes with 403 auth.forbidden for a signed-in user with no roles', async () => {
    const nobody = await signIn(harness.testApp, await createTestAccount(harness.testApp, { roles: [] }));
    const stored = await storeUser();
    const fetched = await getAs(nobody.authorization, stored.location);
    expectProblem(fetched, 403, 'auth.forbidden');
    expect(fetched.body).not.toContain(stored.email);

    const input = buildUserInput();
    expectProblem(await postAs(nobody.authorization, input), 403, 'auth.forbidden');
    expect(await countUsersWithEmail(input.email)).toBe(0);
  });

  it('stores no idempotency record for a request refused with 401 or 403', async () => {
    const key = buildIdempotencyKey();
    const input = buildUserInput();
    const headers = { 'idempotency-key': key };
    expectProblem(
      await harness.testApp.app.inject({ method: 'POST', url: '/user', payload: input, headers }),
      401,
      'auth.unauthenticated',
    );
    expectProblem(
      await harness.testApp.app.inject({
        method: 'POST',
        url: '/user',
        payload: input,
        headers: { ...headers, authorization: readerKey },
      }),
      403,
      'auth.forbidden',
    );
    expect(await countIdempotencyRows(key)).toBe(0);
    expect(await countUsersWithEmail(input.email)).toBe(0);
  });
});
