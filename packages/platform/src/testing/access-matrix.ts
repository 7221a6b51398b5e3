import type { HTTPMethods } from 'fastify';
import type { AccessRule, KeelApp } from '../http/index.ts';

/**
 * Which object a cell acts on: the caller's own, another principal's, or
 * none in particular (a collection, or records nobody owns).
 */
export type MatrixObject = 'own' | 'other' | 'none';

/** A principal the matrix calls routes as. */
export type MatrixCaller = {
  name: string;
  /** The `Authorization` header value; absent for an anonymous caller. */
  authorization?: string;
  /** Compared with a route's `kinds` (operations for signed-in people only refuse API keys). */
  kind?: 'user' | 'api_key';
  /**
   * The permissions the caller effectively holds, as the test expects them
   * (not read from the app: the matrix checks the app against this).
   */
  permissions?: readonly string[];
  /** The principal's id, so that `request` can name the caller's own objects. */
  id?: string;
};

/**
 * What one cell should answer. `allowed`: the access rule let the caller in
 * (neither 401 nor 403; a 404 or 409 from the handler is fine);
 * `unauthenticated`: 401; `forbidden`: 403; a number or `{ status, code }`:
 * exactly that status (and problem `code`).
 */
export type MatrixExpectation = 'allowed' | 'unauthenticated' | 'forbidden' | number | MatrixStatus;
export type MatrixStatus = { status: number; code?: string };

export type MatrixRequest = {
  url: string;
  payload?: unknown;
  /** Merged over the caller's `authorization`; set `authorization` to act through another credential. */
  headers?: Record<string, string>;
};

export type MatrixMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One route of the matrix: its declared access rule, how to call it, and what to expect. */
export type MatrixRoute = {
  method: MatrixMethod;
  /** The path as registered (`/user/:id`); the coverage check matches it against the app's routes. */
  path: string;
  /** The rule the route must enforce; the expected answer of every cell derives from it. */
  access: AccessRule;
  /** The principal kinds the operation serves; other kinds that pass `access` expect 403. Default: all. */
  kinds?: readonly NonNullable<MatrixCaller['kind']>[];
  /** The objects to try. Default `['none']`; `['own', 'other']` for routes on owned objects. */
  objects?: readonly MatrixObject[];
  /**
   * Builds the request of one cell. Called once per cell, so it may create a
   * fresh object (or a fresh session) for each. Default: `path` with no body.
   */
  request?: (cell: { caller: MatrixCaller; object: MatrixObject }) => MatrixRequest | Promise<MatrixRequest>;
  /** What a caller the rule lets in gets. Default `'allowed'`. */
  allowed?: MatrixExpectation;
  /** What a caller the rule lets in gets for another principal's object (BOLA: usually 404). */
  othersObject?: MatrixExpectation;
  /** Per caller name, overrides the derived expectation, for every object or per object. */
  expect?: Readonly<Record<string, MatrixExpectation | Partial<Record<MatrixObject, MatrixExpectation>>>>;
};

/** The outcome of one (route, caller, object) cell. */
export type AccessMatrixCell = {
  /** `METHOD path`, as in the route table. */
  route: string;
  caller: string;
  object: MatrixObject;
  expected: MatrixExpectation;
  status: number;
  /** The problem+json `code` of an error answer. */
  code: string | undefined;
  isMatch: boolean;
};

/** A route the app serves, read from Fastify's route table. */
export type RegisteredRoute = {
  method: string;
  /** As registered: `/user/:id`. */
  path: string;
  /** From the OpenAPI document; absent for routes hidden from it (`/metrics`, `/docs/*`). */
  operationId?: string;
};

export class AccessMatrixError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AccessMatrixError';
  }
}

const routeKey = (route: { method: string; path: string }) => `${route.method} ${route.path}`;

/**
 * The expected answer of one cell: the caller's override if any; otherwise
 * derived from the route's rule the way the platform applies it (no
 * credentials → 401, missing permission or wrong principal kind → 403).
 */
export function expectationFor(
  route: MatrixRoute,
  caller: MatrixCaller,
  object: MatrixObject,
): MatrixExpectation {
  const override = route.expect?.[caller.name];
  if (override !== undefined) {
    if (!isPerObject(override)) return override;
    const forObject = override[object];
    if (forObject !== undefined) return forObject;
  }
  const passed =
    object === 'other' && route.othersObject !== undefined
      ? route.othersObject
      : (route.allowed ?? 'allowed');
  if (route.access === 'public') return passed;
  if (caller.authorization === undefined) return 'unauthenticated';
  if (route.access !== 'authenticated') {
    if (caller.permissions === undefined) {
      throw new AccessMatrixError(
        `Caller ${caller.name} declares no permissions; ${routeKey(route)} needs ${route.access}`,
      );
    }
    if (!caller.permissions.includes(route.access)) return 'forbidden';
  }
  if (route.kinds !== undefined) {
    if (caller.kind === undefined) {
      throw new AccessMatrixError(
        `Caller ${caller.name} declares no kind; ${routeKey(route)} serves some kinds only`,
      );
    }
    if (!route.kinds.includes(caller.kind)) return 'forbidden';
  }
  return passed;
}

function isPerObject(
  value: MatrixExpectation | Partial<Record<MatrixObject, MatrixExpectation>>,
): value is Partial<Record<MatrixObject, MatrixExpectation>> {
  return typeof value === 'object' && !('status' in value);
}

/** Whether an answer meets an expectation. */
export function meetsExpectation(
  expected: MatrixExpectation,
  status: number,
  code: string | undefined,
): boolean {
  if (expected === 'allowed') return status !== 401 && status !== 403;
  if (expected === 'unauthenticated') return status === 401;
  if (expected === 'forbidden') return status === 403;
  if (typeof expected === 'number') return status === expected;
  return status === expected.status && (expected.code === undefined || code === expected.code);
}

function problemCodeOf(response: { headers: Record<string, unknown>; body: string }): string | undefined {
  const contentType = String(response.headers['content-type'] ?? '');
  if (!contentType.includes('json')) return undefined;
  try {
    const code = (JSON.parse(response.body) as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Calls every route as every caller, for every object the route lists, and
 * reports each cell with what was expected and what came back. Cells run one
 * after another, route by route in the given order, so a route that ends
 * sessions (logout-all) can come last. Assert with
 * `expect(describeMismatches(cells)).toEqual([])`.
 *
 * @example
 * const cells = await runAccessMatrix(app, {
 *   callers: [{ name: 'anonymous' }, { name: 'reader', authorization, kind: 'user', permissions: ['orders:read'] }],
 *   routes: [{ method: 'GET', path: '/orders/:id', access: 'orders:read', objects: ['own', 'other'],
 *     othersObject: 404, request: ({ object }) => ({ url: `/orders/${object === 'own' ? mine : theirs}` }) }],
 * });
 * expect(describeMismatches(cells)).toEqual([]);
 */
export async function runAccessMatrix(
  app: KeelApp,
  options: { callers: readonly MatrixCaller[]; routes: readonly MatrixRoute[] },
): Promise<AccessMatrixCell[]> {
  const names = new Set<string>();
  for (const caller of options.callers) {
    if (names.has(caller.name)) throw new AccessMatrixError(`Two callers are named ${caller.name}`);
    names.add(caller.name);
  }
  const cells: AccessMatrixCell[] = [];
  for (const route of options.routes) {
    for (const name of Object.keys(route.expect ?? {})) {
      // A misspelt caller name would silently fall back to the derived expectation.
      if (!names.has(name))
        throw new AccessMatrixError(`${routeKey(route)} expects something of unknown caller ${name}`);
    }
    for (const caller of options.callers) {
      for (const object of route.objects ?? ['none']) {
        const expected = expectationFor(route, caller, object);
        const request = route.request ? await route.request({ caller, object }) : { url: route.path };
        const response = await app.inject({
          method: route.method,
          url: request.url,
          headers: {
            ...(caller.authorization === undefined ? {} : { authorization: caller.authorization }),
            ...request.headers,
          },
          ...(request.payload === undefined ? {} : { payload: request.payload as object }),
        });
        const code = problemCodeOf(response);
        cells.push({
          route: routeKey(route),
          caller: caller.name,
          object,
          expected,
          status: response.statusCode,
          code,
          isMatch: meetsExpectation(expected, response.statusCode, code),
        });
      }
    }
  }
  return cells;
}

/** One readable line per cell that did not answer as expected; empty when all did. */
export function describeMismatches(cells: readonly AccessMatrixCell[]): string[] {
  return cells
    .filter((cell) => !cell.isMatch)
    .map((cell) => {
      const expected =
        typeof cell.expected === 'object' ? JSON.stringify(cell.expected) : String(cell.expected);
      const actual = cell.code === undefined ? String(cell.status) : `${cell.status} ${cell.code}`;
      return `${cell.route} as ${cell.caller} (${cell.object} object): expected ${expected}, got ${actual}`;
    });
}

// printRoutes() draws the router's radix tree, one node per line: branches,
// the path piece the node adds to its parent's, and the methods of the routes
// ending there (none for inner nodes). A node with routes under several
// constraints continues on lines without a branch. (The `commonPrefix: false`
// printout is shorter but drops the static piece above a wildcard.)
const TREE_LINE = /^((?:│ {3}| {4})*)(?:├── |└── )(.*?)(?: \(([A-Z]+(?:, [A-Z]+)*)\)(?: .*)?)?$/;
const CONTINUATION_LINE = /^(?:│ {3}| {4})+.*? \(([A-Z]+(?:, [A-Z]+)*)\)(?: .*)?$/;

/**
 * Every route the app serves (HEAD twins of GET routes included), with its
 * operationId when the OpenAPI document has it. Read from Fastify's own route
 * table rather than the OpenAPI document, so routes hidden from the
 * documentation are listed too; every route read is checked with
 * `app.hasRoute`, so a change in Fastify's printout fails loudly instead of
 * dropping routes. Call after `app.ready()`.
 *
 * @example
 * const routes = listRoutes(app); // [{ method: 'GET', path: '/user/:id', operationId: 'getUser' }, …]
 */
export function listRoutes(app: KeelApp): RegisteredRoute[] {
  const documented = documentedRoutesOf(app);
  const routes: RegisteredRoute[] = [];
  const pieces: string[] = [];
  let current: string | undefined;
  for (const line of app.printRoutes().split('\n')) {
    if (line.trim() === '') continue;
    let methods: string | undefined;
    const node = TREE_LINE.exec(line);
    if (node !== null) {
      const [, indent = '', piece = '', listed] = node;
      pieces.length = indent.length / 4;
      pieces.push(piece);
      current = pieces.join('');
      methods = listed;
    } else {
      const continuation = CONTINUATION_LINE.exec(line);
      if (continuation === null || current === undefined) {
        throw new AccessMatrixError(`listRoutes cannot read this line of the route table: ${line}`);
      }
      methods = continuation[1];
    }
    for (const method of methods?.split(', ') ?? []) {
      const route = readRoute(app, documented, method, current);
      if (!routes.some((known) => routeKey(known) === routeKey(route))) routes.push(route);
    }
  }
  return routes;
}

// Parameter names do not tell routes apart (the router refuses two routes that
// differ only in them), and the printout joins sibling parameters of different
// names into one piece, `:id|:noteId`; routes are compared without the names.
const PARAMETER = /:[A-Za-z0-9_]+(?:\|:[A-Za-z0-9_]+)*/g;
const withoutParameterNames = (path: string) => path.replace(PARAMETER, ':');
const comparableKey = (route: { method: string; path: string }) =>
  `${route.method} ${withoutParameterNames(route.path)}`;

function readRoute(
  app: KeelApp,
  documented: Map<string, RegisteredRoute>,
  method: string,
  printed: string,
): RegisteredRoute {
  // The first spelling of each parameter; the OpenAPI document, when it has
  // the route, gives the names it was registered with.
  const path = printed.replace(PARAMETER, (piece) => piece.split('|')[0] ?? piece);
  if (!app.hasRoute({ method: method as HTTPMethods, url: path })) {
    throw new AccessMatrixError(
      `listRoutes read ${method} ${printed} from the route table, but the app has no such route`,
    );
  }
  return documented.get(comparableKey({ method, path })) ?? { method, path };
}

function documentedRoutesOf(app: KeelApp): Map<string, RegisteredRoute> {
  const routes = new Map<string, RegisteredRoute>();
  const document = (
    app as { swagger?: () => { paths?: Record<string, Record<string, { operationId?: string }>> } }
  ).swagger?.();
  for (const [openApiPath, item] of Object.entries(document?.paths ?? {})) {
    // OpenAPI writes `{id}` where Fastify registered `:id`.
    const path = openApiPath.replace(/\{([^}]+)\}/g, ':$1');
    for (const [lowerCaseMethod, operation] of Object.entries(item)) {
      const method = lowerCaseMethod.toUpperCase();
      const route: RegisteredRoute = {
        method,
        path,
        ...(operation.operationId === undefined ? {} : { operationId: operation.operationId }),
      };
      routes.set(comparableKey(route), route);
    }
  }
  return routes;
}

/**
 * Compares the matrix with the app: `uncovered` are routes the app serves
 * that the matrix does not list (so a new route fails the test until someone
 * states who may call it), `unknown` are matrix routes the app does not
 * serve (a typo would otherwise test a 404). A HEAD route counts as covered
 * by its GET twin, which Fastify registers with the same options.
 *
 * @example
 * const gaps = findMatrixGaps(app, routes, { isExempt: (route) => route.path.startsWith('/docs') });
 * expect(gaps).toEqual({ uncovered: [], unknown: [] });
 */
export function findMatrixGaps(
  app: KeelApp,
  routes: readonly Pick<MatrixRoute, 'method' | 'path'>[],
  options: { isExempt?: (route: RegisteredRoute) => boolean } = {},
): { uncovered: string[]; unknown: string[] } {
  const registered = listRoutes(app);
  const listed = new Set(routes.map(comparableKey));
  const served = new Set(registered.map(comparableKey));
  const isCovered = (route: RegisteredRoute) =>
    listed.has(comparableKey(route)) ||
    (route.method === 'HEAD' && listed.has(comparableKey({ ...route, method: 'GET' })));
  return {
    uncovered: registered
      .filter((route) => !isCovered(route) && !(options.isExempt?.(route) ?? false))
      .map(routeKey),
    unknown: routes.filter((route) => !served.has(comparableKey(route))).map(routeKey),
  };
}
