export {
  type AccessMatrixCell,
  AccessMatrixError,
  describeMismatches,
  expectationFor,
  findMatrixGaps,
  listRoutes,
  type MatrixCaller,
  type MatrixExpectation,
  type MatrixMethod,
  type MatrixObject,
  type MatrixRequest,
  type MatrixRoute,
  type MatrixStatus,
  meetsExpectation,
  type RegisteredRoute,
  runAccessMatrix,
} from './access-matrix.ts';
export {
  createTestAccount,
  createTestApiKey,
  type SignedIn,
  signIn,
  TEST_PASSWORD,
  type TestAccount,
} from './auth-helpers.ts';
export { findFreePort } from './free-port.ts';
export { tamperWithRow } from './tamper.ts';
export { startTcpProxy, type TcpProxy, type TcpProxyFault } from './tcp-proxy.ts';
export {
  buildTestApp,
  type CapturedLogs,
  captureLogs,
  type TestApp,
  type TestAppHarness,
  useTestApp,
} from './test-app.ts';
export {
  createTestDatabase,
  prepareTestDatabaseServer,
  TEST_DATABASE_SETTINGS,
  type TestDatabase,
  type TestDatabaseServer,
  withDatabase,
} from './test-database.ts';
