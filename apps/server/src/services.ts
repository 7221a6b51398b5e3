import { ordersModule } from '@keel/orders';
import type { ServiceModule } from '@keel/platform/module';
import { telemedicineModule } from '@keel/telemedicine';
import { userMetadataModule } from '@keel/user-metadata';

/** Every service this server can mount. `SERVICES` picks from these by name. */
export const ALL_MODULES: ServiceModule[] = [userMetadataModule, ordersModule, telemedicineModule];

/** Resolves `SERVICES` ('all' or a comma list of names); an unknown name stops start. */
export function selectModules(selection: string[]): ServiceModule[] {
  if (selection.length === 0 || selection.includes('all')) return ALL_MODULES;
  const byName = new Map(ALL_MODULES.map((module) => [module.name, module]));
  const unknown = selection.filter((name) => !byName.has(name));
  if (unknown.length > 0) {
    throw new Error(
      `SERVICES names unknown services: ${unknown.join(', ')} (known: ${[...byName.keys()].join(', ')})`,
    );
  }
  return selection.map((name) => byName.get(name) as ServiceModule);
}
