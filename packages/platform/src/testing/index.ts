export { buildTestApp, type CapturedLogs, captureLogs, type TestApp } from './test-app.ts';
export {
  createTestDatabase,
  prepareTestDatabaseServer,
  TEST_DATABASE_SETTINGS,
  type TestDatabase,
  type TestDatabaseServer,
  withDatabase,
} from './test-database.ts';
export { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';
