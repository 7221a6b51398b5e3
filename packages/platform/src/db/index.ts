export {
  type ColumnType,
  type Generated,
  type Insertable,
  type Kysely,
  type RawBuilder,
  type Selectable,
  sql,
  type Transaction,
} from 'kysely';
export { type CommitSignals, createCommitSignals } from './commit-signals.ts';
export { type ColumnValues, insertRowsWhen } from './conditional-insert.ts';
export {
  type AnyTransaction,
  type AnyWriter,
  asPlatformTables,
  createDatabase,
  type Database,
  type DatabaseSettings,
  type Db,
  signalAfterCommit,
} from './database.ts';
export { type EmbeddedDatabase, startEmbeddedPostgres } from './embedded-postgres.ts';
export { areMigrationsApplied, MigrationError, type MigrationSource, runMigrations } from './migrations.ts';
export { isDatabaseOutage, isTransientDatabaseError, isUniqueViolation, sqlState } from './pg-errors.ts';
