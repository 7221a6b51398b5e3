import { afterEach, describe, expect, it } from 'vitest';
import type { Authenticator, Principal } from '../http/access.ts';
import { createHttpApp, type KeelApp } from '../http/app.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import {
  AccessMatrixError,
  describeMismatches,
  expectationFor,
  findMatrixGaps,
  listRoutes,
  type MatrixCaller,
  type MatrixRoute,
  meetsExpectation,
  runAccessMatrix,
} from './access-matrix.ts';
import { captureLogs } from './test-app.ts';

const openApps: KeelApp[] = [];

afterEach(async () => {
  await Promise.all(openApps.splice(0).map((app) => app.close()));
});

function principal(id: string, kind: Principal['kind'], permissions: string[]): Principal {
  return { id, kind, permissions: new Set(permissions), roles: [], isMfaAuthenticated: false };
}

const authenticate: Authenticator = async (request) => {
  const token = request.headers.authorization?.replace(/^Bearer /, '');
  if (token === 'alice') return principal('alice', 'user', ['notes:read']);
  if (token === 'bob') return principal('bob', 'user', []);
  if (token === 'robot') return principal('robot', 'api_key', ['notes:read']);
  return undefined;
};

// Alice owns note 1, Bob note 2; the handler hides other people's notes behind a 404.
const owners = new Map([
  ['1', 'alice'],
  ['2', 'bob'],
]);

async function buildApp(options: { isBolaBroken?: boolean; isGateBroken?: boolean } = {}): Promise<KeelApp> {
  const { stream } = captureLogs();
  const app = await createHttpApp({
    logger: createLogger({ level: 'silent', destination: stream }),
    metrics: createMetrics({ collectProcessMetrics: false }),
    bodyLimitBytes: 2048,
    corsOrigins: [],
    trustProxy: false,
    tracing: false,
    authenticate,
    openapi: { title: 'Matrix', version: '0.0.0-test', description: '' },
  });
  openApps.push(app);
  app.get('/ping', { config: { access: 'public' }, schema: { operationId: 'ping' } }, async () => ({}));
  app.get(
    '/notes/:id',
    {
      config: { access: options.isGateBroken ? 'authenticated' : 'notes:read' },
      schema: { operationId: 'getNote' },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const isVisible = options.isBolaBroken || owners.get(id) === request.principal?.id;
      return isVisible ? { id } : reply.code(404).send({ code: 'notes.not_found' });
    },
  );
  // A sibling parameter with another name: the route table prints `:id|:noteId`.
  app.post(
    '/notes/:noteId/share',
    { config: { access: 'authenticated' }, schema: { operationId: 'shareNote' } },
    async (request, reply) =>
      request.principal?.kind === 'user'
        ? reply.code(204).send()
        : reply.code(403).send({ code: 'auth.forbidden' }),
  );
  app.get('/hidden', { config: { access: 'public' }, schema: { hide: true } }, async () => ({}));
  await app.ready();
  return app;
}

const callers: MatrixCaller[] = [
  { name: 'anonymous' },
  { name: 'alice', authorization: 'Bearer alice', kind: 'user', permissions: ['notes:read'], id: 'alice' },
  { name: 'bob', authorization: 'Bearer bob', kind: 'user', permissions: [], id: 'bob' },
  { name: 'robot', authorization: 'Bearer robot', kind: 'api_key', permissions: ['notes:read'], id: 'robot' },
];

const noteOf = (caller: MatrixCaller, object: string) =>
  object === 'own' ? (caller.id === 'bob' ? '2' : '1') : caller.id === 'alice' ? '2' : '1';

const routes: MatrixRoute[] = [
  { method: 'GET', path: '/ping', access: 'public', allowed: 200 },
  {
    method: 'GET',
    path: '/notes/:id',
    access: 'notes:read',
    objects: ['own', 'other'],
    request: ({ caller, object }) => ({ url: `/notes/${noteOf(caller, object)}` }),
    allowed: 200,
    othersObject: 404,
    // The robot owns no note: its "own" is Alice's, which it may not see either.
    expect: { robot: 404 },
  },
  {
    method: 'POST',
    path: '/notes/:noteId/share',
    access: 'authenticated',
    kinds: ['user'],
    request: () => ({ url: '/notes/1/share' }),
    allowed: 204,
  },
];

describe('runAccessMatrix', () => {
  it('reports no mismatch when every route answers as its rule says', async () => {
    const app = await buildApp();
    const cells = await runAccessMatrix(app, { callers, routes });
    expect(describeMismatches(cells)).toEqual([]);
    // 1 + 2 objects + 1 per caller.
    expect(cells).toHaveLength(callers.length * 4);
    expect(cells.find((cell) => cell.caller === 'bob' && cell.route === 'GET /notes/:id')).toMatchObject({
      expected: 'forbidden',
      status: 403,
      code: 'auth.forbidden',
    });
  });

  it('reports the cells of a route whose permission check is missing', async () => {
    const app = await buildApp({ isGateBroken: true });
    const cells = await runAccessMatrix(app, { callers, routes });
    expect(describeMismatches(cells)).toEqual([
      'GET /notes/:id as bob (own object): expected forbidden, got 200',
      'GET /notes/:id as bob (other object): expected forbidden, got 404 notes.not_found',
    ]);
  });

  it("reports another principal's object served to a caller (BOLA)", async () => {
    const app = await buildApp({ isBolaBroken: true });
    const cells = await runAccessMatrix(app, { callers, routes });
    expect(describeMismatches(cells)).toEqual([
      'GET /notes/:id as alice (other object): expected 404, got 200',
      'GET /notes/:id as robot (own object): expected 404, got 200',
      'GET /notes/:id as robot (other object): expected 404, got 200',
    ]);
  });

  it('refuses an expectation for a caller the matrix does not have', async () => {
    const app = await buildApp();
    const misspelt: MatrixRoute = {
      method: 'GET',
      path: '/ping',
      access: 'public',
      expect: { anonymus: 200 },
    };
    await expect(runAccessMatrix(app, { callers, routes: [misspelt] })).rejects.toThrow(AccessMatrixError);
  });
});

describe('expectationFor', () => {
  const route: MatrixRoute = { method: 'GET', path: '/x', access: 'x:read' };

  it('derives 401 without credentials, 403 without the permission, and allowed with it', () => {
    expect(expectationFor(route, { name: 'a' }, 'none')).toBe('unauthenticated');
    expect(expectationFor(route, { name: 'b', authorization: 'b', permissions: [] }, 'none')).toBe(
      'forbidden',
    );
    expect(expectationFor(route, { name: 'c', authorization: 'c', permissions: ['x:read'] }, 'none')).toBe(
      'allowed',
    );
  });

  it('refuses to guess when a caller declares no permissions', () => {
    expect(() => expectationFor(route, { name: 'd', authorization: 'd' }, 'none')).toThrow(AccessMatrixError);
  });

  it('applies a per-object override only to that object', () => {
    const withOverride: MatrixRoute = { ...route, expect: { e: { other: 404 } } };
    const caller = { name: 'e', authorization: 'e', permissions: ['x:read'] };
    expect(expectationFor(withOverride, caller, 'other')).toBe(404);
    expect(expectationFor(withOverride, caller, 'own')).toBe('allowed');
  });
});

describe('meetsExpectation', () => {
  it('treats any answer but 401 and 403 as allowed, and checks an exact code when given', () => {
    expect(meetsExpectation('allowed', 404, 'x.not_found')).toBe(true);
    expect(meetsExpectation('allowed', 401, 'auth.unauthenticated')).toBe(false);
    expect(
      meetsExpectation({ status: 401, code: 'auth.invalid_credentials' }, 401, 'auth.unauthenticated'),
    ).toBe(false);
    expect(meetsExpectation({ status: 401 }, 401, 'anything')).toBe(true);
  });
});

describe('listRoutes and findMatrixGaps', () => {
  it('lists every route, hidden ones and HEAD twins included, with OpenAPI operation ids', async () => {
    const app = await buildApp();
    const listed = listRoutes(app);
    expect(listed).toEqual(
      expect.arrayContaining([
        { method: 'GET', path: '/ping', operationId: 'ping' },
        { method: 'HEAD', path: '/ping' },
        { method: 'GET', path: '/notes/:id', operationId: 'getNote' },
        { method: 'POST', path: '/notes/:noteId/share', operationId: 'shareNote' },
        { method: 'GET', path: '/hidden' },
        { method: 'GET', path: '/openapi.json' },
        // A wildcard under a static piece with no route of its own (@fastify/static's).
        { method: 'GET', path: '/docs/static/*' },
      ]),
    );
    expect(listed.filter((route) => route.path.startsWith('/docs')).length).toBeGreaterThan(0);
  });

  it('reports routes the matrix misses and matrix routes the app does not serve', async () => {
    const app = await buildApp();
    const gaps = findMatrixGaps(app, [...routes, { method: 'DELETE', path: '/notes/:id' }], {
      isExempt: (route) => route.path.startsWith('/docs') || route.path === '/openapi.json',
    });
    expect(gaps).toEqual({ uncovered: ['GET /hidden', 'HEAD /hidden'], unknown: ['DELETE /notes/:id'] });
  });
});
