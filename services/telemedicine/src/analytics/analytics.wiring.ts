import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';

/** Builds this feature and registers its routes, subscriptions and jobs. (Placeholder until the feature lands.) */
export function wireAnalytics(_app: KeelApp, _deps: TelemedicineDependencies): void {}
