import { randomUUID } from 'node:crypto';
import {
  ConsultationBookedV1,
  ConsultationCancelledV1,
  ConsultationConfirmedV1,
  ConsultationExpiredV1,
  ConsultationRescheduledV1,
  DoctorProfileChangedV1,
  SlotsChangedV1,
} from '@keel/contracts';
import type { Clock } from '@keel/platform/module';
import { emitEvent } from '@keel/platform/outbox';
import {
  closeRedisClient,
  createRedisClient,
  type RedisClient,
  waitForRedisReady,
} from '@keel/platform/redis';
import { type TestAppHarness, useTestApp } from '@keel/platform/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startOfLocalDate } from '../src/availability/time-zone.ts';
import type { TelemedicineSchema } from '../src/database.ts';
import { telemedicineModule } from '../src/index.ts';
import { type DoctorSpec, insertDoctor, insertSlots } from './fixtures.ts';

// Search reads the clock for its availability windows; fixed for the file so
// "within N days" means the same thing in every request.
const nowMs = Date.now();
const clock: Clock = { now: () => new Date(nowMs) };
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

// Every search below is the only app of its database, but the tests of one
// app share it: each test gives its doctors a currency of its own and
// filters by it. The salt keeps the codes (and so the cache keys) of one run
// apart from the previous run's.
const CURRENCY_SALT = Math.floor(Math.random() * 16_000);
let currenciesUsed = 0;
function uniqueCurrency(): string {
  const value = CURRENCY_SALT + currenciesUsed;
  currenciesUsed += 1;
  return [Math.floor(value / 676), Math.floor(value / 26), value]
    .map((digit) => String.fromCharCode(65 + (digit % 26)))
    .join('');
}

// Rate limits count per IP in Redis across every app sharing it; they are not under test here.
const BASE_ENV = { RATE_LIMIT_ENABLED: 'false' };
const harness = useTestApp({ modules: [telemedicineModule], clock, env: BASE_ENV });

type SearchItem = {
  id: string;
  full_name: string;
  specialties: string[];
  languages: string[];
  years_of_experience: number;
  fee_minor: number;
  currency: string;
  rating: number | null;
  rating_count: number;
  next_available_at: string | null;
  bio_excerpt: string;
};
type SearchPage = { items: SearchItem[]; next_cursor: string | null };
type Problem = { status: number; code: string; errors?: { pointer: string; detail: string }[] };
type Params = Record<string, string | number>;

type TestDoctor = DoctorSpec & {
  rating?: { sum: number; count: number };
  nextAvailableAt?: Date;
};

async function addDoctor(spec: TestDoctor, on: TestAppHarness = harness): Promise<string> {
  const { database } = on.testDb;
  const id = await insertDoctor(database, randomUUID(), spec);
  if (spec.rating !== undefined || spec.nextAvailableAt !== undefined) {
    await database.typed<TelemedicineSchema>().run((db) =>
      db
        .updateTable('telemedicine.doctors')
        .set({
          ...(spec.rating === undefined
            ? {}
            : { rating_sum: spec.rating.sum, rating_count: spec.rating.count }),
          ...(spec.nextAvailableAt === undefined ? {} : { next_available_at: spec.nextAvailableAt }),
        })
        .where('id', '=', id)
        .execute(),
    );
  }
  return id;
}

/** A change straight in the table, as if a writer had forgotten its event. */
async function setFee(on: TestAppHarness, doctorId: string, feeMinor: number): Promise<void> {
  await on.testDb.database
    .typed<TelemedicineSchema>()
    .run((db) =>
      db
        .updateTable('telemedicine.doctors')
        .set({ fee_minor: feeMinor })
        .where('id', '=', doctorId)
        .execute(),
    );
}

function search(params: Params, on: TestAppHarness = harness) {
  const query = new URLSearchParams(
    Object.entries(params).map(([name, value]): [string, string] => [name, String(value)]),
  );
  return on.testApp.app.inject({ method: 'GET', url: `/telemedicine/search/doctors?${query}` });
}

async function searchOk(params: Params, on: TestAppHarness = harness): Promise<SearchPage> {
  const response = await search(params, on);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<SearchPage>();
}

async function idsOf(params: Params, on: TestAppHarness = harness): Promise<string[]> {
  return (await searchOk({ limit: 50, ...params }, on)).items.map((item) => item.id);
}

/** Follows next_cursor to the end; returns every id in order and the number of pages. */
async function allPages(params: Params, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: SearchPage = await searchOk({ ...params, limit, ...(cursor === null ? {} : { cursor }) });
    ids.push(...page.items.map((item) => item.id));
    cursor = page.next_cursor;
    pages += 1;
    expect(pages).toBeLessThan(20);
  } while (cursor !== null);
  return { ids, pages };
}

async function expectProblem(params: Params, code: string, pointer?: string): Promise<void> {
  const response = await search(params);
  expect(response.statusCode, response.body).toBe(400);
  expect(response.headers['content-type']).toContain('application/problem+json');
  const problem = response.json<Problem>();
  expect(problem.code).toBe(code);
  if (pointer !== undefined) expect(problem.errors?.map((error) => error.pointer)).toContain(pointer);
}

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

async function holdSlot(on: TestAppHarness, slotId: string): Promise<void> {
  await on.testDb.database.typed<TelemedicineSchema>().run((db) =>
    db
      .updateTable('telemedicine.slots')
      .set({ status: 'HELD', hold_expires_at: new Date(nowMs + HOUR_MS) })
      .where('id', '=', slotId)
      .execute(),
  );
}

describe('GET /telemedicine/search/doctors', () => {
  it('lists verified doctors only, never pending or suspended ones', async () => {
    const currency = uniqueCurrency();
    const verified = await addDoctor({ currency, fullName: 'Vera Verified' });
    await addDoctor({ currency, fullName: 'Vera Pending', status: 'PENDING' });
    await addDoctor({ currency, fullName: 'Vera Suspended', status: 'SUSPENDED' });
    expect(await idsOf({ currency })).toEqual([verified]);
    expect(await idsOf({ currency, q: 'Vera' })).toEqual([verified]);
    expect(await idsOf({ currency, sort: 'rating' })).toEqual([verified]);
  });

  it('answers the public profile fields, with a bio excerpt of at most 200 characters', async () => {
    const currency = uniqueCurrency();
    const nextAvailableAt = new Date(nowMs + 2 * DAY_MS);
    const id = await addDoctor({
      currency,
      fullName: 'Ingrid Bergström',
      specialties: ['cardiology', 'internal medicine'],
      languages: ['sv', 'en'],
      yearsOfExperience: 17,
      feeMinor: 7550,
      bio: `${'Heart rhythm specialist with a focus on telemedicine follow-ups. '.repeat(10)}`,
      rating: { sum: 14, count: 3 },
      nextAvailableAt,
    });
    const page = await searchOk({ currency });
    expect(page.next_cursor).toBeNull();
    const [item] = page.items;
    expect(item).toEqual({
      id,
      full_name: 'Ingrid Bergström',
      specialties: ['cardiology', 'internal medicine'],
      languages: ['sv', 'en'],
      years_of_experience: 17,
      fee_minor: 7550,
      currency,
      rating: 4.67,
      rating_count: 3,
      next_available_at: nextAvailableAt.toISOString(),
      bio_excerpt: expect.stringMatching(/^Heart rhythm specialist .*…$/),
    });
    expect(Array.from(item?.bio_excerpt ?? '').length).toBeLessThanOrEqual(200);
    expect(JSON.stringify(item)).not.toContain('registration');
  });

  describe('filters', () => {
    it('filters by one specialty, exactly and ignoring case', async () => {
      const currency = uniqueCurrency();
      const cardiologist = await addDoctor({ currency, specialties: ['cardiology', 'internal medicine'] });
      await addDoctor({ currency, specialties: ['pediatric cardiology'] });
      await addDoctor({ currency, specialties: ['dermatology'] });
      expect(await idsOf({ currency, specialty: 'cardiology' })).toEqual([cardiologist]);
      expect(await idsOf({ currency, specialty: 'Cardiology' })).toEqual([cardiologist]);
      expect(await idsOf({ currency, specialty: 'Internal Medicine' })).toEqual([cardiologist]);
      expect(await idsOf({ currency, specialty: 'cardio' })).toEqual([]);
    });

    it('filters by a spoken language', async () => {
      const currency = uniqueCurrency();
      const germanSpeaker = await addDoctor({ currency, languages: ['en', 'de'] });
      await addDoctor({ currency, languages: ['en', 'fr'] });
      expect(await idsOf({ currency, language: 'de' })).toEqual([germanSpeaker]);
      expect(await idsOf({ currency, language: 'DE' })).toEqual([germanSpeaker]);
      expect(await idsOf({ currency, language: 'es' })).toEqual([]);
    });

    it('filters by an inclusive fee range', async () => {
      const currency = uniqueCurrency();
      const cheap = await addDoctor({ currency, feeMinor: 1000 });
      const middle = await addDoctor({ currency, feeMinor: 3000 });
      const dear = await addDoctor({ currency, feeMinor: 9000 });
      expect(await idsOf({ currency, fee_min: 3000, sort: 'fee' })).toEqual([middle, dear]);
      expect(await idsOf({ currency, fee_max: 3000, sort: 'fee' })).toEqual([cheap, middle]);
      expect(await idsOf({ currency, fee_min: 1000, fee_max: 3000, sort: 'fee' })).toEqual([cheap, middle]);
      expect(await idsOf({ currency, fee_min: 3000, fee_max: 3000 })).toEqual([middle]);
      expect(await idsOf({ currency, fee_min: 3001, fee_max: 8999 })).toEqual([]);
    });

    it('filters by currency', async () => {
      const euro = uniqueCurrency();
      const other = uniqueCurrency();
      const inEuro = await addDoctor({ currency: euro });
      const inOther = await addDoctor({ currency: other });
      expect(await idsOf({ currency: euro })).toEqual([inEuro]);
      expect(await idsOf({ currency: other })).toEqual([inOther]);
    });

    it('filters by minimum rating and leaves unrated doctors out', async () => {
      const currency = uniqueCurrency();
      const excellent = await addDoctor({ currency, rating: { sum: 19, count: 4 } }); // 4.75
      const good = await addDoctor({ currency, rating: { sum: 8, count: 2 } }); // 4.00
      await addDoctor({ currency, rating: { sum: 7, count: 2 } }); // 3.50
      const unrated = await addDoctor({ currency });
      expect(await idsOf({ currency, min_rating: 4, sort: 'rating' })).toEqual([excellent, good]);
      expect(await idsOf({ currency, min_rating: 4.5 })).toEqual([excellent]);
      expect(await idsOf({ currency, min_rating: 0 })).not.toContain(unrated);
      expect(await idsOf({ currency, min_rating: 0 })).toHaveLength(3);
      expect(await idsOf({ currency })).toContain(unrated);
    });

    it('filters by an open slot on a local date, in the zone asked for (UTC by default)', async () => {
      const currency = uniqueCurrency();
      const day = isoDay(new Date(nowMs + 3 * DAY_MS));
      const midnightUtc = new Date(`${day}T00:00:00.000Z`);
      const berlinMidnight = new Date(startOfLocalDate(day, 'Europe/Berlin'));
      // 00:30 in Berlin is the evening before in UTC.
      const earlyInBerlin = await addDoctor({ currency });
      await insertSlots(harness.testDb.database, earlyInBerlin, {
        startsAt: new Date(berlinMidnight.getTime() + 30 * 60_000),
      });
      // 23:30 UTC is already the next day in Berlin.
      const lateInUtc = await addDoctor({ currency });
      await insertSlots(harness.testDb.database, lateInUtc, {
        startsAt: new Date(midnightUtc.getTime() + 23.5 * HOUR_MS),
      });
      const midday = await addDoctor({ currency });
      await insertSlots(harness.testDb.database, midday, {
        startsAt: new Date(midnightUtc.getTime() + 12 * HOUR_MS),
      });
      // Only OPEN slots count: a held one is not availability.
      const held = await addDoctor({ currency });
      const [heldSlot] = await insertSlots(harness.testDb.database, held, {
        startsAt: new Date(midnightUtc.getTime() + 12 * HOUR_MS),
      });
      await holdSlot(harness, heldSlot ?? '');
      await addDoctor({ currency, fullName: 'No Slots' });

      expect(new Set(await idsOf({ currency, available_on: day }))).toEqual(new Set([lateInUtc, midday]));
      expect(new Set(await idsOf({ currency, available_on: day, time_zone: 'UTC' }))).toEqual(
        new Set([lateInUtc, midday]),
      );
      expect(new Set(await idsOf({ currency, available_on: day, time_zone: 'Europe/Berlin' }))).toEqual(
        new Set([earlyInBerlin, midday]),
      );
      expect(await idsOf({ currency, available_on: isoDay(new Date(nowMs + 20 * DAY_MS)) })).toEqual([]);
    });

    it('filters by an open slot between now and now + N days, ignoring past slots', async () => {
      const currency = uniqueCurrency();
      const soon = await addDoctor({ currency });
      await insertSlots(harness.testDb.database, soon, { startsAt: new Date(nowMs + 30 * HOUR_MS) });
      const later = await addDoctor({ currency });
      await insertSlots(harness.testDb.database, later, { startsAt: new Date(nowMs + 10 * DAY_MS) });
      const onlyPast = await addDoctor({ currency });
      await insertSlots(harness.testDb.database, onlyPast, { startsAt: new Date(nowMs - 2 * HOUR_MS) });

      expect(await idsOf({ currency, available_within_days: 1 })).toEqual([]);
      expect(await idsOf({ currency, available_within_days: 2 })).toEqual([soon]);
      expect(new Set(await idsOf({ currency, available_within_days: 14 }))).toEqual(new Set([soon, later]));
      expect(await idsOf({ currency, available_within_days: 60 })).not.toContain(onlyPast);
    });

    it('combines filters: every one of them must hold', async () => {
      const currency = uniqueCurrency();
      const base = {
        currency,
        specialties: ['neurology'],
        languages: ['en', 'es'],
        feeMinor: 4000,
        rating: { sum: 9, count: 2 },
      };
      const match = await addDoctor(base);
      const misses = [
        await addDoctor({ ...base, specialties: ['dermatology'] }),
        await addDoctor({ ...base, languages: ['en'] }),
        await addDoctor({ ...base, feeMinor: 6000 }),
        await addDoctor({ ...base, rating: { sum: 3, count: 1 } }),
        await addDoctor(base), // no slot
      ];
      for (const id of [match, ...misses.slice(0, 4)]) {
        await insertSlots(harness.testDb.database, id, { startsAt: new Date(nowMs + DAY_MS) });
      }
      const params = {
        currency,
        specialty: 'neurology',
        language: 'es',
        fee_max: 5000,
        min_rating: 4,
        available_within_days: 3,
      };
      expect(await idsOf(params)).toEqual([match]);
      expect(await idsOf({ ...params, q: 'neurology' })).toEqual([match]);
    });
  });

  describe('free text', () => {
    let currency: string;
    const doctors: Record<string, string> = {};

    beforeAll(async () => {
      currency = uniqueCurrency();
      doctors.okonkwo = await addDoctor({ currency, fullName: 'Chidi Okonkwo', specialties: ['cardiology'] });
      doctors.smith = await addDoctor({ currency, fullName: 'Anna Smith', specialties: ['dermatology'] });
      doctors.smyth = await addDoctor({ currency, fullName: 'Joan Smyth', specialties: ['pediatrics'] });
      doctors.eriksen = await addDoctor({
        currency,
        fullName: 'Lars Eriksen',
        specialties: ['general practice'],
        bio: 'Former cardiologist, now a family doctor.',
      });
      doctors.pending = await addDoctor({
        currency,
        fullName: 'Chidi Okonkwo',
        specialties: ['cardiology'],
        status: 'PENDING',
      });
    });

    it('finds a doctor by name, ignoring case', async () => {
      expect(await idsOf({ currency, q: 'okonkwo' })).toEqual([doctors.okonkwo]);
      expect(await idsOf({ currency, q: 'Chidi OKONKWO' })).toEqual([doctors.okonkwo]);
    });

    it('finds a doctor by a specialty word', async () => {
      expect(await idsOf({ currency, q: 'cardiology' })).toEqual([doctors.okonkwo]);
      expect(await idsOf({ currency, q: 'Dermatology' })).toEqual([doctors.smith]);
    });

    it('matches specialty words as far as English stemming relates them', async () => {
      // "pediatric" and "pediatrics" share the stem "pediatr".
      expect(await idsOf({ currency, q: 'pediatric' })).toEqual([doctors.smyth]);
      // The stems differ ("cardiologist" vs "cardiolog"), so each finds only
      // the doctor with that very word: the specialty, or the bio.
      expect(await idsOf({ currency, q: 'cardiologist' })).toEqual([doctors.eriksen]);
      expect(await idsOf({ currency, q: 'cardiology' })).toEqual([doctors.okonkwo]);
    });

    it('finds a name despite a typo, ranking the exact spelling first', async () => {
      expect(await idsOf({ currency, q: 'Smith' })).toEqual([doctors.smith, doctors.smyth]);
      expect(await idsOf({ currency, q: 'Smyth' })).toEqual([doctors.smyth, doctors.smith]);
      expect(await idsOf({ currency, q: 'Okonkow' })).toEqual([doctors.okonkwo]);
    });

    it('combines words with web search syntax', async () => {
      expect(await idsOf({ currency, q: 'anna dermatology' })).toEqual([doctors.smith]);
      expect(await idsOf({ currency, q: 'dermatology or pediatrics' })).toHaveLength(2);
    });

    it('finds nothing for text that matches nobody', async () => {
      expect(await idsOf({ currency, q: 'xylophone' })).toEqual([]);
      expect(await idsOf({ currency, q: '!!! ???' })).toEqual([]);
    });

    it('treats an empty q as no text filter', async () => {
      expect(await idsOf({ currency, q: '' })).toHaveLength(4);
    });
  });

  describe('sorting and pagination', () => {
    let currency: string;
    type Spec = { id: string; fee: number; rating: number | null; next: number | null };
    const specs: Spec[] = [];

    beforeAll(async () => {
      currency = uniqueCurrency();
      // Ties in every sort key, and nulls, so that pages split ties and
      // the null tail of rating and next availability.
      const rows: Omit<Spec, 'id'>[] = [
        { fee: 3000, rating: null, next: null },
        { fee: 1000, rating: 4.5, next: 1 },
        { fee: 2000, rating: 3, next: 2 },
        { fee: 2000, rating: 4.5, next: 1 },
        { fee: 5000, rating: null, next: null },
        { fee: 1000, rating: 5, next: 3 },
        { fee: 4000, rating: 2, next: 2 },
      ];
      for (const [index, row] of rows.entries()) {
        const id = await addDoctor({
          currency,
          fullName: `Neha Sharma ${index}`,
          specialties: ['neurology'],
          feeMinor: row.fee,
          // Some mention neurology more often: a spread of relevance scores.
          bio: 'neurology '.repeat(index % 3),
          ...(row.rating === null ? {} : { rating: { sum: row.rating * 2, count: 2 } }),
          ...(row.next === null ? {} : { nextAvailableAt: new Date(nowMs + row.next * DAY_MS) }),
        });
        specs.push({ id, ...row });
      }
    });

    const byId = (left: Spec, right: Spec) => (left.id < right.id ? -1 : left.id > right.id ? 1 : 0);
    const nullsLast = (left: number | null, right: number | null, direction: 1 | -1) => {
      if (left === right) return 0;
      if (left === null) return 1;
      if (right === null) return -1;
      return (left - right) * direction;
    };
    const expected: Record<string, () => string[]> = {
      fee: () => [...specs].sort((a, b) => a.fee - b.fee || byId(a, b)).map((spec) => spec.id),
      rating: () =>
        [...specs].sort((a, b) => nullsLast(a.rating, b.rating, -1) || byId(a, b)).map((spec) => spec.id),
      next_available: () =>
        [...specs].sort((a, b) => nullsLast(a.next, b.next, 1) || byId(a, b)).map((spec) => spec.id),
    };

    it.each([
      ['fee', 2],
      ['fee', 3],
      ['rating', 2],
      ['rating', 3],
      ['next_available', 2],
      ['next_available', 3],
    ])('pages through sort=%s (limit %i) returning each doctor once, in order', async (sort, limit) => {
      const { ids, pages } = await allPages({ currency, sort }, limit);
      expect(pages).toBeGreaterThanOrEqual(3);
      expect(ids).toEqual(expected[sort]?.());
    });

    it('sorts by next availability when no text is given, unavailable doctors last', async () => {
      expect(await idsOf({ currency })).toEqual(expected.next_available?.());
    });

    it.each([2, 3])(
      'pages through relevance (the default with q, limit %i) in the order of one page',
      async (limit) => {
        const whole = await idsOf({ currency, q: 'neurology' });
        expect(new Set(whole)).toEqual(new Set(specs.map((spec) => spec.id)));
        const { ids, pages } = await allPages({ currency, q: 'neurology' }, limit);
        expect(pages).toBeGreaterThanOrEqual(3);
        expect(ids).toEqual(whole);
        expect((await allPages({ currency, q: 'neurology', sort: 'relevance' }, limit)).ids).toEqual(whole);
      },
    );

    it('ranks better matches first', async () => {
      const ids = await idsOf({ currency, q: 'neurology' });
      // Index 2 and 5 mention neurology twice in the bio, 0, 3 and 6 not at all.
      const mentions = (id: string) => specs.findIndex((spec) => spec.id === id) % 3;
      const counts = ids.map(mentions);
      expect(counts).toEqual([...counts].sort((a, b) => b - a));
    });

    it('lets a later page use another page size with the same cursor', async () => {
      const first = await searchOk({ currency, sort: 'fee', limit: 2 });
      const rest = await searchOk({ currency, sort: 'fee', limit: 50, cursor: first.next_cursor ?? '' });
      expect([...first.items, ...rest.items].map((item) => item.id)).toEqual(expected.fee?.());
      expect(rest.next_cursor).toBeNull();
    });

    it('rejects with telemedicine.invalid_cursor a cursor of other filters or another sort', async () => {
      const first = await searchOk({ currency, sort: 'fee', limit: 2 });
      const cursor = first.next_cursor ?? '';
      await expectProblem(
        { currency, sort: 'rating', limit: 2, cursor },
        'telemedicine.invalid_cursor',
        '/querystring/cursor',
      );
      await expectProblem(
        { currency, sort: 'fee', fee_max: 9000, limit: 2, cursor },
        'telemedicine.invalid_cursor',
      );
      await expectProblem(
        { currency: uniqueCurrency(), sort: 'fee', limit: 2, cursor },
        'telemedicine.invalid_cursor',
      );
      await expectProblem({ currency, sort: 'fee', cursor: 'garbage' }, 'telemedicine.invalid_cursor');
      const forged = Buffer.from(
        JSON.stringify({ v: 1, s: 'fee', h: 'x', k: '1', i: randomUUID() }),
      ).toString('base64url');
      await expectProblem({ currency, sort: 'fee', cursor: forged }, 'telemedicine.invalid_cursor');
    });
  });

  describe('validation', () => {
    it.each([
      [{ limit: 0 }, '/querystring/limit'],
      [{ limit: 51 }, '/querystring/limit'],
      [{ limit: 'ten' }, '/querystring/limit'],
      [{ fee_min: -1 }, '/querystring/fee_min'],
      [{ fee_max: 'cheap' }, '/querystring/fee_max'],
      [{ min_rating: 5.5 }, '/querystring/min_rating'],
      [{ available_on: '2030-02-30' }, '/querystring/available_on'],
      [{ available_on: 'tomorrow' }, '/querystring/available_on'],
      [{ available_within_days: 0 }, '/querystring/available_within_days'],
      [{ available_within_days: 61 }, '/querystring/available_within_days'],
      [{ language: 'eng' }, '/querystring/language'],
      [{ currency: 'eur' }, '/querystring/currency'],
      [{ sort: 'popularity' }, '/querystring/sort'],
      [{ q: 'x'.repeat(201) }, '/querystring/q'],
      [{ q: 'smith\u0000' }, '/querystring/q'],
      [{ specialty: '' }, '/querystring/specialty'],
      [{ page: 2 }, '/querystring/page'],
    ])('rejects %o with request.invalid and a pointer', async (params, pointer) => {
      await expectProblem(params as Params, 'request.invalid', pointer);
    });

    it('rejects a repeated single-valued parameter with request.invalid', async () => {
      const response = await harness.testApp.app.inject({
        method: 'GET',
        url: '/telemedicine/search/doctors?specialty=cardiology&specialty=dermatology',
      });
      expect(response.statusCode).toBe(400);
      expect(response.json<Problem>().code).toBe('request.invalid');
    });

    it('rejects with telemedicine.invalid_fee_range when fee_min is above fee_max', async () => {
      await expectProblem(
        { fee_min: 5000, fee_max: 4000 },
        'telemedicine.invalid_fee_range',
        '/querystring/fee_min',
      );
    });

    it('rejects with telemedicine.invalid_time_zone a zone that does not exist', async () => {
      await expectProblem(
        { available_on: '2030-01-01', time_zone: 'Europe/Atlantis' },
        'telemedicine.invalid_time_zone',
        '/querystring/time_zone',
      );
    });

    it('rejects with telemedicine.sort_requires_query a relevance sort without q', async () => {
      await expectProblem({ sort: 'relevance' }, 'telemedicine.sort_requires_query', '/querystring/sort');
    });
  });
});

// A Redis logical database of its own: no other test's keys or generation bumps.
const REDIS_URL = 'redis://127.0.0.1:6379/11';

const facts = (doctorId: string) => ({
  consultationId: randomUUID(),
  patientId: randomUUID(),
  doctorId,
  slotId: randomUUID(),
  specialty: 'cardiology',
  startsAt: new Date(nowMs + DAY_MS).toISOString(),
  endsAt: new Date(nowMs + DAY_MS + 15 * 60_000).toISOString(),
  feeMinor: 5000,
  currency: 'EUR',
});

// Every event the search cache listens to, with a payload its contract accepts.
const INVALIDATING_EVENTS = [
  {
    definition: DoctorProfileChangedV1,
    payload: (doctorId: string) => ({ doctorId, status: 'VERIFIED', change: 'profile' }),
  },
  {
    definition: SlotsChangedV1,
    payload: (doctorId: string) => ({ doctorId, offeredByDay: [{ day: '2030-01-01', count: 1 }] }),
  },
  {
    definition: ConsultationBookedV1,
    payload: (doctorId: string) => ({
      ...facts(doctorId),
      paymentId: randomUUID(),
      holdExpiresAt: new Date(nowMs + HOUR_MS).toISOString(),
    }),
  },
  {
    definition: ConsultationConfirmedV1,
    payload: (doctorId: string) => ({ ...facts(doctorId), paymentId: randomUUID() }),
  },
  {
    definition: ConsultationExpiredV1,
    payload: (doctorId: string) => ({ ...facts(doctorId), reason: 'hold_expired' }),
  },
  {
    definition: ConsultationCancelledV1,
    payload: (doctorId: string) => ({ ...facts(doctorId), cancelledBy: 'patient', refundMinor: 5000 }),
  },
  {
    definition: ConsultationRescheduledV1,
    payload: (doctorId: string) => ({
      ...facts(doctorId),
      previousSlotId: randomUUID(),
      previousStartsAt: new Date(nowMs + 2 * DAY_MS).toISOString(),
    }),
  },
] as const;

async function emitAndDeliver(
  on: TestAppHarness,
  event: (typeof INVALIDATING_EVENTS)[number],
  doctorId: string,
): Promise<void> {
  await on.testDb.database.typed<TelemedicineSchema>().transaction((trx) =>
    emitEvent(
      trx,
      {
        type: event.definition.type,
        aggregateType: 'doctor',
        aggregateId: doctorId,
        payload: event.payload(doctorId),
        occurredAt: clock.now(),
      },
      { definition: event.definition },
    ),
  );
  await on.testApp.background.drainEvents();
}

async function feeSeen(on: TestAppHarness, currency: string): Promise<number | undefined> {
  return (await searchOk({ currency }, on)).items[0]?.fee_minor;
}

const CACHE_SERIES = {
  processHits: 'keel_telemedicine_search_cache_hits_total{layer="process"}',
  redisHits: 'keel_telemedicine_search_cache_hits_total{layer="redis"}',
  misses: 'keel_telemedicine_search_cache_misses_total',
  coalesced: 'keel_telemedicine_search_cache_coalesced_total',
  disconnectedBypasses: 'keel_telemedicine_search_cache_bypasses_total{reason="disconnected"}',
  invalidationsPublished: 'keel_telemedicine_search_cache_invalidations_published_total',
} as const;

/** The search cache's series as the app serves them on /metrics (undefined: not exported). */
async function scrapeCacheSeries(
  on: TestAppHarness,
): Promise<Record<keyof typeof CACHE_SERIES, number | undefined>> {
  const response = await on.testApp.app.inject({ method: 'GET', url: '/metrics' });
  expect(response.statusCode).toBe(200);
  const lines = response.body.split('\n');
  const readSeries = (series: string) => {
    const line = lines.find((candidate) => candidate.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  return {
    processHits: readSeries(CACHE_SERIES.processHits),
    redisHits: readSeries(CACHE_SERIES.redisHits),
    misses: readSeries(CACHE_SERIES.misses),
    coalesced: readSeries(CACHE_SERIES.coalesced),
    disconnectedBypasses: readSeries(CACHE_SERIES.disconnectedBypasses),
    invalidationsPublished: readSeries(CACHE_SERIES.invalidationsPublished),
  };
}

describe('with the Redis cache', () => {
  const cached = useTestApp({
    modules: [telemedicineModule],
    clock,
    // Invalidations are published by the cache's ticker; a short interval keeps the polls below short.
    env: {
      ...BASE_ENV,
      REDIS_URL,
      TELEMEDICINE_SEARCH_CACHE_TTL_SECONDS: '120',
      TELEMEDICINE_SEARCH_CACHE_COALESCE_MS: '20',
    },
  });
  let redis: RedisClient;

  beforeAll(async () => {
    redis = createRedisClient({ url: REDIS_URL, logger: cached.testApp.logger, name: 'search-test' });
    await waitForRedisReady(redis, { timeoutMs: 5000 });
  });
  afterAll(async () => {
    await closeRedisClient(redis);
  });

  it('answers a repeated search from Redis, with the TTL, until an event invalidates it', async () => {
    const currency = uniqueCurrency();
    const doctorId = await addDoctor({ currency, feeMinor: 5000 }, cached);
    const generationBefore = Number((await redis.get('telemedicine:search:generation')) ?? '0');
    expect(await feeSeen(cached, currency)).toBe(5000);

    await setFee(cached, doctorId, 6000);
    expect(await feeSeen(cached, currency)).toBe(5000);

    await emitAndDeliver(cached, INVALIDATING_EVENTS[0], doctorId);
    await vi.waitFor(async () => expect(await feeSeen(cached, currency)).toBe(6000));
    expect(Number(await redis.get('telemedicine:search:generation'))).toBeGreaterThan(generationBefore);

    const generation = await redis.get('telemedicine:search:generation');
    const keys = await redis.keys(`telemedicine:search:v1:${generation}:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(120);
    }
  });

  it.each(INVALIDATING_EVENTS.map((event) => [event.definition.type, event] as const))(
    'serves fresh results after %s',
    async (_type, event) => {
      const currency = uniqueCurrency();
      const doctorId = await addDoctor({ currency, feeMinor: 5000 }, cached);
      expect(await feeSeen(cached, currency)).toBe(5000);
      await setFee(cached, doctorId, 7000);
      expect(await feeSeen(cached, currency)).toBe(5000);
      await emitAndDeliver(cached, event, doctorId);
      await vi.waitFor(async () => expect(await feeSeen(cached, currency)).toBe(7000));
    },
  );

  it('exports the miss and the hit of a repeated search, and the invalidation it publishes, on /metrics', async () => {
    const currency = uniqueCurrency();
    const doctorId = await addDoctor({ currency, feeMinor: 5000 }, cached);
    const before = await scrapeCacheSeries(cached);
    expect(await feeSeen(cached, currency)).toBe(5000);
    expect(await feeSeen(cached, currency)).toBe(5000);
    const after = await scrapeCacheSeries(cached);
    expect((after.misses ?? 0) - (before.misses ?? 0)).toBe(1);
    expect((after.processHits ?? 0) - (before.processHits ?? 0)).toBe(1);

    await emitAndDeliver(cached, INVALIDATING_EVENTS[0], doctorId);
    await vi.waitFor(async () =>
      expect((await scrapeCacheSeries(cached)).invalidationsPublished).toBeGreaterThan(
        before.invalidationsPublished ?? 0,
      ),
    );
  });

  it('caches each page of a paginated search under its own key', async () => {
    const currency = uniqueCurrency();
    for (const fee of [1000, 2000, 3000]) await addDoctor({ currency, feeMinor: fee }, cached);
    const first = await searchOk({ currency, sort: 'fee', limit: 2 }, cached);
    const second = await searchOk(
      { currency, sort: 'fee', limit: 2, cursor: first.next_cursor ?? '' },
      cached,
    );
    expect(second.items.map((item) => item.fee_minor)).toEqual([3000]);
    const again = await searchOk(
      { currency, sort: 'fee', limit: 2, cursor: first.next_cursor ?? '' },
      cached,
    );
    expect(again).toEqual(second);
    expect(await searchOk({ currency, sort: 'fee', limit: 2 }, cached)).toEqual(first);
  });
});

describe('with the cache turned off (TTL 0)', () => {
  const uncached = useTestApp({
    modules: [telemedicineModule],
    clock,
    env: { ...BASE_ENV, REDIS_URL, TELEMEDICINE_SEARCH_CACHE_TTL_SECONDS: '0' },
  });

  it('reads every search from the database', async () => {
    const currency = uniqueCurrency();
    const doctorId = await addDoctor({ currency, feeMinor: 5000 }, uncached);
    expect(await feeSeen(uncached, currency)).toBe(5000);
    await setFee(uncached, doctorId, 6000);
    expect(await feeSeen(uncached, currency)).toBe(6000);
  });

  it('exports no search cache series', async () => {
    await feeSeen(uncached, uniqueCurrency());
    const series = await scrapeCacheSeries(uncached);
    expect(Object.values(series).every((value) => value === undefined)).toBe(true);
  });
});

describe('with Redis unreachable', () => {
  // Port 1 refuses connections at once: a Redis that is down, deterministically.
  const unreachable = useTestApp({
    modules: [telemedicineModule],
    clock,
    env: { ...BASE_ENV, REDIS_URL: 'redis://127.0.0.1:1', TELEMEDICINE_SEARCH_CACHE_TTL_SECONDS: '120' },
  });

  it('still answers every search from the database, logging the outage once', async () => {
    const currency = uniqueCurrency();
    const doctorId = await addDoctor({ currency, feeMinor: 5000 }, unreachable);
    expect(await feeSeen(unreachable, currency)).toBe(5000);
    await setFee(unreachable, doctorId, 6000);
    expect(await feeSeen(unreachable, currency)).toBe(6000);
    expect((await searchOk({ currency, q: 'test' }, unreachable)).items).toHaveLength(1);

    // The invalidation fails (and is retried later) without failing anything else.
    await emitAndDeliver(unreachable, INVALIDATING_EVENTS[0], doctorId);
    expect(await feeSeen(unreachable, currency)).toBe(6000);

    const outageLines = unreachable.testApp.logs
      .lines()
      .filter((line) => line.msg === 'search cache unavailable; searching the database');
    expect(outageLines).toHaveLength(1);
  });

  it('counts each search as a bypass of the disconnected cache on /metrics, never as a miss', async () => {
    const currency = uniqueCurrency();
    await addDoctor({ currency, feeMinor: 5000 }, unreachable);
    const before = await scrapeCacheSeries(unreachable);
    await feeSeen(unreachable, currency);
    await feeSeen(unreachable, currency);
    const after = await scrapeCacheSeries(unreachable);
    expect((after.disconnectedBypasses ?? 0) - (before.disconnectedBypasses ?? 0)).toBe(2);
    expect(after.misses).toBe(0);
    expect(after.processHits).toBe(0);
    expect(after.redisHits).toBe(0);
  });
});
