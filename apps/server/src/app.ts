import type { KeelApp } from '@keel/platform/http';
import { buildKeelApp, type KeelAppDependencies } from '@keel/platform/server';

export type AppDependencies = KeelAppDependencies;

/** Builds the server's app from its dependencies; never listens (main.ts does). */
export function buildApp(deps: AppDependencies): Promise<KeelApp> {
  return buildKeelApp(deps);
}
