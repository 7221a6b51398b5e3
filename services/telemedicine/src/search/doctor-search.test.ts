import { randomUUID } from 'node:crypto';
import { isAppError } from '@keel/platform/errors';
import { describe, expect, it } from 'vitest';
import {
  bioExcerptOf,
  type DoctorSearchInput,
  decodeCursor,
  encodeCursor,
  filtersHashOf,
  fingerprintOf,
  normaliseSearch,
  slotWindowsOf,
} from './doctor-search.ts';

function codeOf(work: () => unknown): string | undefined {
  try {
    work();
  } catch (error) {
    return isAppError(error) ? error.code : 'not an AppError';
  }
  return undefined;
}

function search(overrides: Partial<DoctorSearchInput> = {}): DoctorSearchInput {
  return { limit: 20, ...overrides };
}

describe('normaliseSearch', () => {
  it('reduces equivalent spellings of a search to the same criteria', () => {
    const first = normaliseSearch(
      search({ text: '  Anna   SMITH ', specialty: 'Cardiology', language: 'DE' }),
    );
    const second = normaliseSearch(search({ text: 'anna smith', specialty: 'cardiology', language: 'de' }));
    expect(first).toEqual(second);
    expect(first).toMatchObject({ text: 'anna smith', specialty: 'cardiology', language: 'de' });
    expect(fingerprintOf(first, 20, null)).toBe(fingerprintOf(second, 20, null));
  });

  it('sorts by relevance with text and by next availability without', () => {
    expect(normaliseSearch(search({ text: 'smith' })).sort).toBe('relevance');
    expect(normaliseSearch(search()).sort).toBe('next_available');
    expect(normaliseSearch(search({ text: 'smith', sort: 'fee' })).sort).toBe('fee');
  });

  it('treats blank text as no text filter', () => {
    expect(normaliseSearch(search({ text: '   ' })).text).toBeNull();
  });

  it('rejects with telemedicine.sort_requires_query when relevance is asked for without text', () => {
    expect(codeOf(() => normaliseSearch(search({ sort: 'relevance' })))).toBe(
      'telemedicine.sort_requires_query',
    );
    expect(codeOf(() => normaliseSearch(search({ sort: 'relevance', text: ' ' })))).toBe(
      'telemedicine.sort_requires_query',
    );
  });

  it('rejects with telemedicine.invalid_fee_range when fee_min exceeds fee_max', () => {
    expect(codeOf(() => normaliseSearch(search({ feeMin: 5000, feeMax: 4999 })))).toBe(
      'telemedicine.invalid_fee_range',
    );
    expect(codeOf(() => normaliseSearch(search({ feeMin: 5000, feeMax: 5000 })))).toBeUndefined();
  });

  it('rejects with telemedicine.invalid_time_zone for a zone Intl does not know', () => {
    expect(
      codeOf(() => normaliseSearch(search({ availableOn: '2030-01-01', timeZone: 'Mars/Olympus' }))),
    ).toBe('telemedicine.invalid_time_zone');
  });

  it('keeps the zone only with a date, in its canonical spelling', () => {
    expect(
      normaliseSearch(search({ availableOn: '2030-01-01', timeZone: 'europe/berlin' })).availableOn,
    ).toEqual({
      day: '2030-01-01',
      timeZone: 'Europe/Berlin',
    });
    expect(normaliseSearch(search({ availableOn: '2030-01-01' })).availableOn?.timeZone).toBe('UTC');
    expect(normaliseSearch(search({ timeZone: 'Europe/Berlin' })).availableOn).toBeNull();
  });
});

describe('cursors', () => {
  const criteria = normaliseSearch(search({ specialty: 'cardiology', sort: 'fee' }));
  const id = randomUUID();

  it('round-trips a position for the same criteria, whatever the page size', () => {
    const cursor = encodeCursor(criteria, { key: '5000', id });
    expect(
      decodeCursor(cursor, normaliseSearch(search({ specialty: 'Cardiology', sort: 'fee', limit: 5 }))),
    ).toEqual({
      key: '5000',
      id,
    });
  });

  it('rejects with telemedicine.invalid_cursor when the filters or the sort differ', () => {
    const cursor = encodeCursor(criteria, { key: '5000', id });
    const otherFilter = normaliseSearch(search({ specialty: 'dermatology', sort: 'fee' }));
    const otherSort = normaliseSearch(search({ specialty: 'cardiology', sort: 'rating' }));
    expect(filtersHashOf(otherFilter)).not.toBe(filtersHashOf(criteria));
    expect(codeOf(() => decodeCursor(cursor, otherFilter))).toBe('telemedicine.invalid_cursor');
    expect(codeOf(() => decodeCursor(cursor, otherSort))).toBe('telemedicine.invalid_cursor');
  });

  it('rejects with telemedicine.invalid_cursor anything encodeCursor did not produce', () => {
    const forge = (body: object) => Buffer.from(JSON.stringify(body)).toString('base64url');
    const valid = { v: 1, s: 'fee', h: filtersHashOf(criteria), k: '5000', i: id };
    for (const cursor of [
      'not base64 json',
      forge([]),
      forge({ ...valid, v: 2 }),
      forge({ ...valid, i: 'not-a-uuid' }),
      forge({ ...valid, k: "5000' or 1=1" }),
      forge({ ...valid, k: null }),
      forge({ ...valid, k: 12 }),
    ]) {
      expect(
        codeOf(() => decodeCursor(cursor, criteria)),
        cursor,
      ).toBe('telemedicine.invalid_cursor');
    }
    expect(codeOf(() => decodeCursor(forge(valid), criteria))).toBeUndefined();
  });

  it('accepts a null key where nulls sort last (rating, next availability)', () => {
    const byRating = normaliseSearch(search({ sort: 'rating' }));
    expect(decodeCursor(encodeCursor(byRating, { key: null, id }), byRating)).toEqual({ key: null, id });
    const byNext = normaliseSearch(search());
    const at = '2030-01-01T09:00:00.123456Z';
    expect(decodeCursor(encodeCursor(byNext, { key: at, id }), byNext)).toEqual({ key: at, id });
    expect(codeOf(() => decodeCursor(encodeCursor(byNext, { key: '2030-01-01', id }), byNext))).toBe(
      'telemedicine.invalid_cursor',
    );
  });
});

describe('the window of available_on', () => {
  it.each([
    ['2025-01-15', 'UTC', '2025-01-15T00:00:00.000Z', '2025-01-16T00:00:00.000Z'],
    ['2025-01-15', 'Asia/Kolkata', '2025-01-14T18:30:00.000Z', '2025-01-15T18:30:00.000Z'],
    // A 23-hour day (DST starts) and a 25-hour one (DST ends).
    ['2025-03-30', 'Europe/Berlin', '2025-03-29T23:00:00.000Z', '2025-03-30T22:00:00.000Z'],
    ['2025-10-26', 'Europe/Berlin', '2025-10-25T22:00:00.000Z', '2025-10-26T23:00:00.000Z'],
    // Chile skips local midnight when DST starts: that day begins at 01:00.
    ['2025-09-07', 'America/Santiago', '2025-09-07T04:00:00.000Z', '2025-09-08T03:00:00.000Z'],
  ])('spans the local day %s in %s from %s to %s (as Postgres computes it)', (day, timeZone, from, to) => {
    const criteria = normaliseSearch(search({ availableOn: day, timeZone }));
    expect(slotWindowsOf(criteria, new Date('2020-01-01T00:00:00Z'))).toEqual([
      { from: new Date(from), to: new Date(to) },
    ]);
  });
});

describe('slotWindowsOf', () => {
  const now = new Date('2030-06-10T12:00:00.000Z');

  it('starts today’s window now and a future day’s at its local midnight', () => {
    const today = normaliseSearch(search({ availableOn: '2030-06-10', timeZone: 'Europe/Berlin' }));
    expect(slotWindowsOf(today, now)).toEqual([{ from: now, to: new Date('2030-06-10T22:00:00.000Z') }]);
    const later = normaliseSearch(search({ availableOn: '2030-06-12', timeZone: 'Europe/Berlin' }));
    expect(slotWindowsOf(later, now)).toEqual([
      { from: new Date('2030-06-11T22:00:00.000Z'), to: new Date('2030-06-12T22:00:00.000Z') },
    ]);
  });

  it('covers the next N days from now, next to a date window when both are asked for', () => {
    const both = normaliseSearch(search({ availableOn: '2030-06-12', availableWithinDays: 3 }));
    expect(slotWindowsOf(both, now)).toEqual([
      { from: new Date('2030-06-12T00:00:00.000Z'), to: new Date('2030-06-13T00:00:00.000Z') },
      { from: now, to: new Date('2030-06-13T12:00:00.000Z') },
    ]);
    expect(slotWindowsOf(normaliseSearch(search()), now)).toEqual([]);
  });
});

describe('bioExcerptOf', () => {
  it('keeps a short bio whole', () => {
    expect(bioExcerptOf('Cardiologist.\nLoves cycling.')).toBe('Cardiologist. Loves cycling.');
  });

  it('cuts a long bio at a word boundary within 200 characters, with an ellipsis', () => {
    const excerpt = bioExcerptOf(`${'word '.repeat(60)}end`);
    expect(Array.from(excerpt).length).toBeLessThanOrEqual(200);
    expect(excerpt.endsWith('word…')).toBe(true);
  });

  it('counts characters, not UTF-16 units, and cuts one long word mid-word', () => {
    const excerpt = bioExcerptOf('🩺'.repeat(250));
    expect(Array.from(excerpt)).toHaveLength(200);
    expect(excerpt.endsWith('🩺…')).toBe(true);
  });
});
