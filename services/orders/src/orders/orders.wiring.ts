import type { KeelApp } from '@keel/platform/http';
import type { OrdersDependencies } from '../composition-root.ts';

/** Builds the orders feature and registers its routes, subscriptions and jobs. */
export function wireOrders(_app: KeelApp, _deps: OrdersDependencies): void {}
