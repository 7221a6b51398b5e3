import { randomUUID } from 'node:crypto';
import { DoctorProfileChangedV1, ReviewSubmittedV1 } from '@keel/contracts';
import type { Clock } from '@keel/platform/module';
import { useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { ConsultationStatusColumn } from '../src/database.ts';
import { telemedicineModule } from '../src/index.ts';
import {
  insertDoctor,
  signInDoctor,
  signInPatient,
  signInSupport,
  signInTelemedicineAdmin,
  signInWithRoles,
  type TelemedicineCaller,
} from './fixtures.ts';
import { insertConsultation } from './reviews.fixtures.ts';

// A clock the tests move: "newest first" needs distinct review times without sleeping.
let nowMs = Date.now();
const clock: Clock = { now: () => new Date(nowMs) };

const harness = useTestApp({
  modules: [telemedicineModule],
  clock,
  // Every test signs in fresh accounts; the login limiter would stop them.
  env: { RATE_LIMIT_ENABLED: 'false' },
});

type ReviewBody = {
  consultation_id: string;
  doctor_id: string;
  rating: number;
  comment: string;
  created_at: string;
};
type ReviewPage = { items: Record<string, unknown>[]; next_cursor: string | null };

function database() {
  return harness.testDb.database;
}

function inject(caller: TelemedicineCaller | undefined, options: InjectOptions) {
  return harness.testApp.app.inject({
    ...options,
    headers: {
      ...(caller === undefined ? {} : { authorization: caller.authorization }),
      ...(options.headers ?? {}),
    },
  });
}

function submitReview(caller: TelemedicineCaller | undefined, consultationId: string, payload: unknown) {
  return inject(caller, {
    method: 'POST',
    url: `/telemedicine/consultations/${consultationId}/review`,
    payload: payload as object,
  });
}

function expectProblem(response: { statusCode: number; body: string }, status: number, code: string) {
  expect(response.statusCode, response.body).toBe(status);
  expect(JSON.parse(response.body).code).toBe(code);
}

function signInTestPatient(): Promise<TelemedicineCaller> {
  return signInPatient(harness.testApp, database(), harness.testApp.security.fieldCrypto.encryption);
}

/** A patient, a verified doctor and a consultation between them in `status`. */
async function consultationBetween(status: ConsultationStatusColumn = 'COMPLETED') {
  const patient = await signInTestPatient();
  const doctor = await signInDoctor(harness.testApp, database());
  const consultationId = await insertConsultation(
    database(),
    { patientId: patient.account.id, doctorId: doctor.account.id },
    status,
  );
  return { patient, doctor, consultationId };
}

async function ratingOf(
  doctorId: string,
): Promise<{ rating_sum: number; rating_count: number; rating: string | null }> {
  const result = await database().pool.query(
    'select rating_sum, rating_count, rating from telemedicine.doctors where id = $1',
    [doctorId],
  );
  return result.rows[0];
}

async function eventPayloads(type: string, aggregateId: string): Promise<Record<string, unknown>[]> {
  const result = await database().pool.query<{ payload: Record<string, unknown> }>(
    'select payload from platform.outbox_events where type = $1 and aggregate_id = $2 order by position',
    [type, aggregateId],
  );
  return result.rows.map((row) => row.payload);
}

describe('POST /telemedicine/consultations/{id}/review (submitReview)', () => {
  it('records the review, moves the doctor’s rating and emits both events', async () => {
    const { patient, doctor, consultationId } = await consultationBetween();
    const response = await submitReview(patient, consultationId, { rating: 4, comment: 'Thorough.\nKind.' });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json<ReviewBody>()).toEqual({
      consultation_id: consultationId,
      doctor_id: doctor.account.id,
      rating: 4,
      comment: 'Thorough.\nKind.',
      created_at: new Date(nowMs).toISOString(),
    });
    expect(await ratingOf(doctor.account.id)).toEqual({ rating_sum: 4, rating_count: 1, rating: '4.00' });

    expect(await eventPayloads(ReviewSubmittedV1.type, consultationId)).toEqual([
      {
        consultationId,
        doctorId: doctor.account.id,
        rating: 4,
        submittedAt: new Date(nowMs).toISOString(),
      },
    ]);
    expect(await eventPayloads(DoctorProfileChangedV1.type, doctor.account.id)).toEqual([
      { doctorId: doctor.account.id, status: 'VERIFIED', change: 'rating' },
    ]);

    const publicView = await inject(undefined, {
      method: 'GET',
      url: `/telemedicine/doctors/${doctor.account.id}`,
    });
    expect(publicView.json()).toMatchObject({ rating: 4, rating_count: 1 });
  });

  it('accepts a review without a comment', async () => {
    const { patient, consultationId } = await consultationBetween();
    const response = await submitReview(patient, consultationId, { rating: 5 });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json<ReviewBody>().comment).toBe('');
  });

  it('refuses a second review with 409 telemedicine.already_reviewed', async () => {
    const { patient, doctor, consultationId } = await consultationBetween();
    expect((await submitReview(patient, consultationId, { rating: 2 })).statusCode).toBe(201);
    expectProblem(
      await submitReview(patient, consultationId, { rating: 5 }),
      409,
      'telemedicine.already_reviewed',
    );
    expect(await ratingOf(doctor.account.id)).toMatchObject({ rating_sum: 2, rating_count: 1 });
  });

  it.each(['PENDING_PAYMENT', 'SCHEDULED', 'IN_PROGRESS', 'CANCELLED', 'NO_SHOW', 'EXPIRED'] as const)(
    'refuses a %s consultation with 409 telemedicine.consultation_not_completed',
    async (status) => {
      const { patient, consultationId } = await consultationBetween(status);
      expectProblem(
        await submitReview(patient, consultationId, { rating: 3 }),
        409,
        'telemedicine.consultation_not_completed',
      );
    },
  );

  it('hides the consultation (404) from another patient and for an unknown id', async () => {
    const { doctor, consultationId } = await consultationBetween();
    const stranger = await signInTestPatient();
    expectProblem(
      await submitReview(stranger, consultationId, { rating: 1 }),
      404,
      'telemedicine.consultation_not_found',
    );
    expectProblem(
      await submitReview(stranger, randomUUID(), { rating: 1 }),
      404,
      'telemedicine.consultation_not_found',
    );
    expect(await ratingOf(doctor.account.id)).toMatchObject({ rating_count: 0 });
  });

  it('refuses anonymous callers with 401 and the doctor, support and admins with 403', async () => {
    const { doctor, consultationId } = await consultationBetween();
    expectProblem(await submitReview(undefined, consultationId, { rating: 5 }), 401, 'auth.unauthenticated');
    expectProblem(await submitReview(doctor, consultationId, { rating: 5 }), 403, 'auth.forbidden');
    expectProblem(
      await submitReview(await signInSupport(harness.testApp), consultationId, { rating: 5 }),
      403,
      'auth.forbidden',
    );
    expectProblem(
      await submitReview(await signInTelemedicineAdmin(harness.testApp), consultationId, { rating: 5 }),
      403,
      'auth.forbidden',
    );
  });

  it.each([
    ['a rating of 0', { rating: 0 }],
    ['a rating of 6', { rating: 6 }],
    ['a fractional rating', { rating: 4.5 }],
    ['a rating as a string', { rating: '5' }],
    ['no rating', { comment: 'Great' }],
    ['a comment over 2000 characters', { rating: 5, comment: 'x'.repeat(2001) }],
    ['an unknown field', { rating: 5, patient_name: 'Ada' }],
  ])('refuses %s with 400 request.invalid', async (_case, payload) => {
    const { patient, consultationId } = await consultationBetween();
    expectProblem(await submitReview(patient, consultationId, payload), 400, 'request.invalid');
  });

  it('refuses a consultation id that is not a uuid with 400', async () => {
    const patient = await signInTestPatient();
    expectProblem(await submitReview(patient, 'nope', { rating: 5 }), 400, 'request.invalid');
  });

  it('accepts exactly one of 20 concurrent reviews of the same consultation', async () => {
    const { patient, doctor, consultationId } = await consultationBetween();
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => submitReview(patient, consultationId, { rating: 3 })),
    );
    const created = responses.filter((response) => response.statusCode === 201);
    const refused = responses.filter((response) => response.statusCode === 409);
    expect(created).toHaveLength(1);
    expect(refused).toHaveLength(19);
    for (const response of refused) expectProblem(response, 409, 'telemedicine.already_reviewed');

    expect(await ratingOf(doctor.account.id)).toMatchObject({ rating_sum: 3, rating_count: 1 });
    const reviews = await database().pool.query(
      'select rating from telemedicine.reviews where consultation_id = $1',
      [consultationId],
    );
    expect(reviews.rows).toEqual([{ rating: 3 }]);
    expect(await eventPayloads(ReviewSubmittedV1.type, consultationId)).toHaveLength(1);
    expect(await eventPayloads(DoctorProfileChangedV1.type, doctor.account.id)).toHaveLength(1);
  });
});

describe('GET /telemedicine/doctors/{id}/reviews (listDoctorReviews)', () => {
  it('lists a doctor’s reviews newest first, paginated, without the patient', async () => {
    const doctor = await signInDoctor(harness.testApp, database());
    const ratings = [5, 4, 3, 2, 1];
    for (const rating of ratings) {
      const patient = await signInTestPatient();
      const consultationId = await insertConsultation(database(), {
        patientId: patient.account.id,
        doctorId: doctor.account.id,
      });
      nowMs += 1000;
      expect(
        (await submitReview(patient, consultationId, { rating, comment: `rated ${rating}` })).statusCode,
      ).toBe(201);
    }

    const seen: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/telemedicine/doctors/${doctor.account.id}/reviews?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`;
      const response = await inject(undefined, { method: 'GET', url });
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json<ReviewPage>();
      seen.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor !== null);

    expect(seen.map((review) => review.rating)).toEqual([1, 2, 3, 4, 5]);
    for (const review of seen)
      expect(Object.keys(review).sort()).toEqual(['comment', 'created_at', 'rating']);
  });

  it('answers an empty page for a verified doctor without reviews', async () => {
    const doctorId = await insertDoctor(database());
    const response = await inject(undefined, {
      method: 'GET',
      url: `/telemedicine/doctors/${doctorId}/reviews`,
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json<ReviewPage>()).toEqual({ items: [], next_cursor: null });
  });

  it.each(['PENDING', 'SUSPENDED'] as const)(
    'answers 404 telemedicine.doctor_not_found for a %s doctor',
    async (status) => {
      const doctorId = await insertDoctor(database(), randomUUID(), { status });
      expectProblem(
        await inject(undefined, { method: 'GET', url: `/telemedicine/doctors/${doctorId}/reviews` }),
        404,
        'telemedicine.doctor_not_found',
      );
    },
  );

  it('refuses an invalid cursor or limit with 400', async () => {
    const doctorId = await insertDoctor(database());
    expectProblem(
      await inject(undefined, {
        method: 'GET',
        url: `/telemedicine/doctors/${doctorId}/reviews?cursor=garbage`,
      }),
      400,
      'telemedicine.invalid_cursor',
    );
    expectProblem(
      await inject(undefined, { method: 'GET', url: `/telemedicine/doctors/${doctorId}/reviews?limit=0` }),
      400,
      'request.invalid',
    );
    expectProblem(
      await inject(undefined, { method: 'GET', url: `/telemedicine/doctors/${randomUUID()}/reviews` }),
      404,
      'telemedicine.doctor_not_found',
    );
  });

  it('is public: a signed-in caller without telemedicine roles reads it too', async () => {
    const doctorId = await insertDoctor(database());
    const outsider = await signInWithRoles(harness.testApp, []);
    const response = await inject(outsider, {
      method: 'GET',
      url: `/telemedicine/doctors/${doctorId}/reviews`,
    });
    expect(response.statusCode, response.body).toBe(200);
  });
});
