import { parseList } from '@keel/platform/config';
import { userMetadataModule } from '@keel/user-metadata';
import { describe, expect, it } from 'vitest';
import { ALL_MODULES, selectModules } from './services.ts';

describe('selectModules', () => {
  it('returns every module when SERVICES is all', () => {
    expect(selectModules(parseList('all'))).toEqual(ALL_MODULES);
    expect(ALL_MODULES).toContain(userMetadataModule);
  });

  it('returns every module when SERVICES is empty', () => {
    expect(selectModules(parseList(''))).toEqual(ALL_MODULES);
  });

  it('returns the named modules when SERVICES lists them', () => {
    expect(selectModules(parseList(' user-metadata '))).toEqual([userMetadataModule]);
  });

  it('throws naming the unknown services and listing the known ones when a name is unknown', () => {
    expect(() => selectModules(parseList('user-metadata, billing, ordres'))).toThrow(
      /billing, ordres.*known: user-metadata/,
    );
  });

  it('gives every module a unique kebab-case name and its own schema', () => {
    const names = ALL_MODULES.map((module) => module.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^[a-z][a-z0-9-]*$/);
    const schemas = ALL_MODULES.map((module) => module.schema);
    expect(new Set(schemas).size).toBe(schemas.length);
    expect(schemas).not.toContain('platform');
  });
});
