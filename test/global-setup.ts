import { migrationSourcesFor } from '@keel/platform/server';
import { prepareTestDatabaseServer, type TestDatabaseServer } from '@keel/platform/testing';
import type { TestProject } from 'vitest/node';
import { ALL_MODULES } from '../apps/server/src/services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    keelTestDatabase: TestDatabaseServer;
  }
}

/** Migrates one template database per run; every test file clones it. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { server, teardown } = await prepareTestDatabaseServer({ sources: migrationSourcesFor(ALL_MODULES) });
  project.provide('keelTestDatabase', server);
  return teardown;
}
