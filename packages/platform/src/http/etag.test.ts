import { describe, expect, it } from 'vitest';
import { AppError } from '../errors/index.ts';
import { formatVersionEtag, parseIfMatchVersion } from './etag.ts';

const invalid = () => new AppError('invalid', 'tests.invalid_if_match', 'bad If-Match');

describe('parseIfMatchVersion', () => {
  it('reads a strong version tag, and is undefined without the header', () => {
    expect(parseIfMatchVersion('"3"', invalid)).toBe(3);
    expect(parseIfMatchVersion(' "12" ', invalid)).toBe(12);
    expect(parseIfMatchVersion(undefined, invalid)).toBeUndefined();
  });

  it('reads * as any current version', () => {
    expect(parseIfMatchVersion('*', invalid)).toBe('*');
  });

  it('accepts a weak tag only when asked to', () => {
    expect(parseIfMatchVersion('W/"3"', invalid, { isWeakAccepted: true })).toBe(3);
    expect(() => parseIfMatchVersion('W/"3"', invalid)).toThrow(
      expect.objectContaining({ code: 'tests.invalid_if_match' }),
    );
  });

  it.each(['3', '"0"', '"03"', '"1", "2"', '"abc"', '"99999999999"', '""'])('refuses %s', (header) => {
    expect(() => parseIfMatchVersion(header, invalid)).toThrow(
      expect.objectContaining({ code: 'tests.invalid_if_match' }),
    );
  });

  it('formats the tag it reads', () => {
    expect(parseIfMatchVersion(formatVersionEtag(7), invalid)).toBe(7);
  });
});
