import type { KeelApp } from '@keel/platform/http';
import type { OrdersDependencies } from '../composition-root.ts';

/** Builds the analytics feature and registers its routes, subscriptions and jobs. */
export function wireAnalytics(_app: KeelApp, _deps: OrdersDependencies): void {}
