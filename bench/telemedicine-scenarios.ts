import { randomBytes } from 'node:crypto';
import type autocannon from 'autocannon';
import { registerBenchAccount, signInAdminOnce, signInEnrollingMfa } from './credentials.ts';
import { eventLagAfterDrain, scrapeMetrics } from './metrics.ts';
import type { PreparedScenario, Scenario, ScenarioContext } from './scenarios.ts';

// The telemedicine scenarios. Everything is created through the public API as
// real users would: doctors register, enrol MFA, write their profile and a
// schedule (which materialises their slots), an admin verifies them; patients
// register and write their profile. Then:
// - telemed-search: searchDoctors with a mix of filters and sorts;
// - telemed-book: bookConsultation, every request a different open slot (a
//   409 would be a slot collision, not load: slots are handed out once);
// - telemed-mixed: 70% search, 15% listSlots, 10% booking, 5% getConsultation;
// - telemed-sustained: the compressed peak, paced at SUSTAINED_RATE requests/s
//   of which 30% are bookings (≥ 120 bookings/s) and the rest searches.

const DOCTORS = 40;
const PATIENTS = 200;
const SEED_CONCURRENCY = 10;
const PASSWORD = 'bench password that is long enough';
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };
const SPECIALTIES = [
  'cardiology',
  'dermatology',
  'general practice',
  'paediatrics',
  'psychiatry',
  'endocrinology',
  'neurology',
  'gynaecology',
];
const LANGUAGES = ['en', 'de', 'fr', 'es', 'hi', 'ar'];
const TIME_ZONES = ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Europe/London', 'Australia/Sydney'];
const SURNAMES = ['Schmidt', 'Smith', 'Garcia', 'Khan', 'Martin', 'Rossi', 'Novak', 'Silva', 'Kim', 'Okafor'];
// Every weekday, around the clock, 10-minute slots: enough open slots that no run books them out.
const SLOT_MINUTES = 10;
export const SUSTAINED_RATE = 420;
const SUSTAINED_BOOKING_SHARE = 0.3;

type Doctor = { id: string; authorization: string };
type Patient = { id: string; authorization: string };
type World = { doctors: Doctor[]; patients: Patient[]; prefix: string };
type Booked = { consultationId: string; patient: Patient };

async function call(
  baseUrl: string,
  method: string,
  url: string,
  authorization: string | undefined,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${baseUrl}${url}`, {
    method,
    headers: {
      ...(body === undefined ? { accept: 'application/json' } : JSON_HEADERS),
      ...(authorization === undefined ? {} : { authorization }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return {
    status: response.status,
    body: (await response.json().catch(() => ({}))) as Record<string, unknown>,
  };
}

async function expectStatus(
  label: string,
  result: Promise<{ status: number; body: Record<string, unknown> }>,
  expected: number[],
) {
  const { status, body } = await result;
  if (!expected.includes(status)) {
    throw new Error(`${label} failed: ${status} ${String(body.code ?? '')} ${String(body.detail ?? '')}`);
  }
  return body;
}

async function login(baseUrl: string, email: string): Promise<string> {
  const body = await expectStatus(
    `login ${email}`,
    call(baseUrl, 'POST', '/auth/login', undefined, { email, password: PASSWORD }),
    [200],
  );
  return `Bearer ${String(body.access_token)}`;
}

/** Runs `task` for 0..count-1 with at most SEED_CONCURRENCY in flight. */
async function inParallel<T>(count: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next;
      next += 1;
      results[index] = await task(index);
    }
  };
  await Promise.all(Array.from({ length: SEED_CONCURRENCY }, worker));
  return results;
}

async function grantRole(baseUrl: string, admin: string, accountId: string, role: string): Promise<void> {
  await expectStatus(
    `granting ${role}`,
    call(baseUrl, 'POST', `/admin/users/${accountId}/roles`, admin, { role }),
    [200, 409],
  );
}

let world: Promise<World> | undefined;

function prepareWorld(baseUrl: string, context: ScenarioContext): Promise<World> {
  world ??= (async () => {
    const prefix = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const admin = `Bearer ${await signInAdminOnce(baseUrl, context.adminFile)}`;
    const me = await expectStatus('GET /auth/me', call(baseUrl, 'GET', '/auth/me', admin), [200]);
    await grantRole(baseUrl, admin, String(me.id), 'telemedicine:admin');

    const doctors = await inParallel(DOCTORS, async (index) => {
      const email = `bench-doctor-${prefix}-${index}@example.com`;
      const id = await registerBenchAccount(baseUrl, email, PASSWORD);
      await grantRole(baseUrl, admin, id, 'telemedicine:doctor');
      const authorization = await signInEnrollingMfa(baseUrl, email, PASSWORD);
      const specialty = SPECIALTIES[index % SPECIALTIES.length] as string;
      await expectStatus(
        'PUT /telemedicine/doctors/me',
        call(baseUrl, 'PUT', '/telemedicine/doctors/me', authorization, {
          full_name: `Dr ${['Anna', 'Ben', 'Chen', 'Dara', 'Eli'][index % 5]} ${SURNAMES[index % SURNAMES.length]} ${index}`,
          specialties: [specialty],
          languages: [LANGUAGES[index % LANGUAGES.length], 'en'].filter(
            (value, position, all) => all.indexOf(value) === position,
          ),
          qualifications: ['MD'],
          registration_number: `BENCH-${prefix}-${index}`,
          years_of_experience: 3 + (index % 30),
          fee_minor: 3000 + (index % 10) * 500,
          currency: 'EUR',
          bio: `Bench doctor practising ${specialty}.`,
          time_zone: TIME_ZONES[index % TIME_ZONES.length],
        }),
        [200, 201],
      );
      await expectStatus(
        'POST /telemedicine/doctors/{id}/verify',
        call(baseUrl, 'POST', `/telemedicine/doctors/${id}/verify`, admin, {}),
        [200],
      );
      await expectStatus(
        'PUT /telemedicine/doctors/me/schedule',
        call(baseUrl, 'PUT', '/telemedicine/doctors/me/schedule', authorization, {
          time_zone: TIME_ZONES[index % TIME_ZONES.length],
          slot_minutes: SLOT_MINUTES,
          buffer_minutes: 0,
          rules: [1, 2, 3, 4, 5, 6, 7].map((weekday) => ({ weekday, start: '00:00', end: '24:00' })),
        }),
        [200, 201],
      );
      return { id, authorization };
    });

    const patients = await inParallel(PATIENTS, async (index) => {
      const email = `bench-patient-${prefix}-${index}@example.com`;
      const id = await registerBenchAccount(baseUrl, email, PASSWORD);
      await grantRole(baseUrl, admin, id, 'telemedicine:patient');
      const authorization = await login(baseUrl, email);
      await expectStatus(
        'PUT /telemedicine/patients/me',
        call(baseUrl, 'PUT', '/telemedicine/patients/me', authorization, {
          full_name: `Bench Patient ${index}`,
          date_of_birth: '1985-06-15',
          sex: 'unspecified',
        }),
        [200, 201],
      );
      return { id, authorization };
    });
    return { doctors, patients, prefix };
  })();
  return world;
}

/** Every open slot of every doctor in the next `days` days, shuffled: each is handed to one booking. */
async function openSlots(baseUrl: string, data: World, days: number): Promise<string[]> {
  const from = new Date(Date.now() + 60 * 60_000);
  const to = new Date(from.getTime() + days * 86_400_000);
  const perDoctor = await inParallel(data.doctors.length, async (index) => {
    const doctor = data.doctors[index] as Doctor;
    const body = await expectStatus(
      'GET slots',
      call(
        baseUrl,
        'GET',
        `/telemedicine/doctors/${doctor.id}/slots?from=${from.toISOString()}&to=${to.toISOString()}`,
        undefined,
      ),
      [200],
    );
    return (body.items as { id: string }[]).map((slot) => slot.id);
  });
  const slots = perDoctor.flat();
  for (let index = slots.length - 1; index > 0; index -= 1) {
    const other = Math.floor(Math.random() * (index + 1));
    [slots[index], slots[other]] = [slots[other] as string, slots[index] as string];
  }
  return slots;
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)] as T;
}

/** A spread of searches a patient app sends: filters, free text (one with a typo), every sort. */
function searchQueries(): string[] {
  const queries: string[] = [];
  for (const specialty of SPECIALTIES) {
    queries.push(`specialty=${encodeURIComponent(specialty)}&sort=next_available`);
    queries.push(`specialty=${encodeURIComponent(specialty)}&available_within_days=7&sort=fee`);
  }
  for (const language of LANGUAGES) queries.push(`language=${language}&min_rating=0&sort=rating`);
  for (const surname of SURNAMES) queries.push(`q=${surname}`);
  queries.push('q=Smyth', 'q=cardiology', 'q=skin%20doctor', 'fee_min=3000&fee_max=5000&sort=fee');
  return queries.map((query) => `/telemedicine/search/doctors?${query}&limit=20`);
}

type BookingContext = { booking?: Patient };
type MixedKind = 'search' | 'slots' | 'booking' | 'consultation';
type MixedContext = BookingContext & { kind?: MixedKind; sentAt?: number };

function createBooking(slots: string[], prefix: string, onBooked: (booked: Booked) => void) {
  let sequence = 0;
  let exhausted = 0;
  return {
    exhausted: () => exhausted,
    setup: (request: autocannon.Request, context: object): autocannon.Request => {
      const patient = pick(cachedPatients);
      const slotId = slots.pop();
      if (slotId === undefined) exhausted += 1;
      sequence += 1;
      (context as BookingContext).booking = patient;
      return {
        ...request,
        method: 'POST',
        path: '/telemedicine/consultations',
        headers: {
          ...JSON_HEADERS,
          authorization: patient.authorization,
          'idempotency-key': `bench-${prefix}-${sequence}`,
        },
        body: JSON.stringify({
          slot_id: slotId ?? '00000000-0000-4000-8000-000000000000',
          reason: 'Bench consultation',
          consent: { treatment: true, telehealth: true, version: '2026-11' },
        }),
      };
    },
    onResponse: (status: number, body: string, context: object) => {
      const patient = (context as BookingContext).booking;
      if (status !== 201 || patient === undefined) return;
      const parsed = JSON.parse(body) as { id?: string; consultation?: { id: string } };
      const consultationId = parsed.consultation?.id ?? parsed.id;
      if (consultationId !== undefined) onBooked({ consultationId, patient });
    },
  };
}

// The patients of the prepared world, for the request generators (which run synchronously).
let cachedPatients: Patient[] = [];

async function prepareBookingWorld(baseUrl: string, context: ScenarioContext) {
  const data = await prepareWorld(baseUrl, context);
  cachedPatients = data.patients;
  const slots = await openSlots(baseUrl, data, 27);
  const baseline = await settledMetrics(baseUrl);
  return { data, slots, baseline, prefix: `${data.prefix}-${randomBytes(3).toString('hex')}` };
}

async function settledMetrics(baseUrl: string): Promise<string> {
  await eventLagAfterDrain(baseUrl);
  return scrapeMetrics(baseUrl);
}

const telemedSearch: Scenario = {
  name: 'telemed-search',
  description:
    `GET /telemedicine/search/doctors (public) over ${DOCTORS} verified doctors with open slots: specialty, language, ` +
    'rating, fee and availability filters, free text (full text + trigram), every sort; cached in Redis when REDIS_URL is set.',
  async prepare(baseUrl, context): Promise<PreparedScenario> {
    await prepareWorld(baseUrl, context);
    // Seeding's events (slots materialised, profiles verified) are delivered
    // first, or their cache invalidations would land in the measured run.
    await settledMetrics(baseUrl);
    const queries = searchQueries();
    return {
      requests: [
        {
          method: 'GET',
          path: queries[0] as string,
          setupRequest: (request) => ({
            ...request,
            method: 'GET',
            path: pick(queries),
            headers: { accept: 'application/json' },
          }),
        },
      ],
      observations: () => ({ distinctQueries: queries.length }),
    };
  },
};

const telemedBook: Scenario = {
  name: 'telemed-book',
  hasPaymentGateway: true,
  description:
    `POST /telemedicine/consultations by ${PATIENTS} patients, each request a different open slot and a unique ` +
    'Idempotency-Key: slot lock and hold, consultation, payment row, consents, outbox event, hold-expiry job, ' +
    'then the payment intent at the simulated gateway (a process of its own) and the idempotent response.',
  async prepare(baseUrl, context): Promise<PreparedScenario> {
    const { slots, baseline, prefix } = await prepareBookingWorld(baseUrl, context);
    const available = slots.length;
    let booked = 0;
    const booking = createBooking(slots, prefix, () => (booked += 1));
    return {
      requests: [
        {
          method: 'POST',
          path: '/telemedicine/consultations',
          setupRequest: booking.setup,
          onResponse: booking.onResponse,
        },
      ],
      observations: async () => ({
        slotsAvailable: available,
        consultationsBooked: booked,
        slotsExhausted: booking.exhausted(),
        ...(await eventLagAfterDrain(baseUrl, { baseline })),
      }),
    };
  },
};

function mixedRequests(
  slots: string[],
  prefix: string,
  doctors: Doctor[],
  shares: { booking: number; slots: number; consultation: number },
) {
  const queries = searchQueries();
  const booked: Booked[] = [];
  const counts = { searches: 0, slotLists: 0, bookings: 0, consultationReads: 0 };
  const booking = createBooking(slots, prefix, (entry) => booked.push(entry));
  // Response times per kind of request, so a slow tail can be told apart (a request the client gave up on
  // has no response and is not here: the kind with the highest max is the likely one).
  const latencies: Record<MixedKind, number[]> = { search: [], slots: [], booking: [], consultation: [] };
  const request: autocannon.Request = {
    method: 'GET',
    path: queries[0] as string,
    setupRequest: (base, context) => {
      const mixedContext = context as MixedContext;
      mixedContext.booking = undefined;
      mixedContext.sentAt = performance.now();
      const roll = Math.random();
      if (roll < shares.booking) {
        counts.bookings += 1;
        mixedContext.kind = 'booking';
        return booking.setup(base, context);
      }
      if (roll < shares.booking + shares.consultation && booked.length > 0) {
        counts.consultationReads += 1;
        mixedContext.kind = 'consultation';
        const entry = pick(booked);
        return {
          ...base,
          method: 'GET',
          path: `/telemedicine/consultations/${entry.consultationId}`,
          headers: { accept: 'application/json', authorization: entry.patient.authorization },
        };
      }
      if (roll < shares.booking + shares.consultation + shares.slots) {
        counts.slotLists += 1;
        mixedContext.kind = 'slots';
        return {
          ...base,
          method: 'GET',
          path: `/telemedicine/doctors/${pick(doctors).id}/slots`,
          headers: { accept: 'application/json' },
        };
      }
      counts.searches += 1;
      mixedContext.kind = 'search';
      return { ...base, method: 'GET', path: pick(queries), headers: { accept: 'application/json' } };
    },
    onResponse: (status, body, context) => {
      const { kind, sentAt } = context as MixedContext;
      if (kind !== undefined && sentAt !== undefined) latencies[kind].push(performance.now() - sentAt);
      booking.onResponse(status, body, context);
    },
  };
  const latencyByKind = () => {
    const summary: Record<string, number> = {};
    for (const [kind, values] of Object.entries(latencies)) {
      if (values.length === 0) continue;
      values.sort((left, right) => left - right);
      summary[`latencyP99Ms ${kind}`] =
        values[Math.min(values.length - 1, Math.floor(values.length * 0.99))] ?? 0;
      summary[`latencyMaxMs ${kind}`] = values.at(-1) ?? 0;
    }
    return summary;
  };
  return { request, counts, booked, exhausted: booking.exhausted, latencyByKind };
}

const telemedMixed: Scenario = {
  name: 'telemed-mixed',
  hasPaymentGateway: true,
  description:
    '70% searchDoctors, 15% listSlots, 10% bookConsultation (a fresh slot each), 5% getConsultation by its patient ' +
    '(decrypts the reason and writes the access audit row).',
  async prepare(baseUrl, context): Promise<PreparedScenario> {
    const { data, slots, baseline, prefix } = await prepareBookingWorld(baseUrl, context);
    const mixed = mixedRequests(slots, prefix, data.doctors, {
      booking: 0.1,
      slots: 0.15,
      consultation: 0.05,
    });
    return {
      requests: [mixed.request],
      observations: async () => ({
        ...mixed.counts,
        ...mixed.latencyByKind(),
        consultationsBooked: mixed.booked.length,
        slotsExhausted: mixed.exhausted(),
        ...(await eventLagAfterDrain(baseUrl, { baseline })),
      }),
    };
  },
};

const telemedSustained: Scenario = {
  name: 'telemed-sustained',
  hasPaymentGateway: true,
  description:
    `Paced at ${SUSTAINED_RATE} requests/s: ${SUSTAINED_BOOKING_SHARE * 100}% bookings (${SUSTAINED_RATE * SUSTAINED_BOOKING_SHARE}/s, ` +
    '10× the specified 100,000 consultations a day compressed into peak) and searches for the rest. Run it with ' +
    '--duration 60.',
  overallRate: SUSTAINED_RATE,
  async prepare(baseUrl, context): Promise<PreparedScenario> {
    const { data, slots, baseline, prefix } = await prepareBookingWorld(baseUrl, context);
    const mixed = mixedRequests(slots, prefix, data.doctors, {
      booking: SUSTAINED_BOOKING_SHARE,
      slots: 0,
      consultation: 0,
    });
    return {
      requests: [mixed.request],
      observations: async () => ({
        ...mixed.counts,
        ...mixed.latencyByKind(),
        consultationsBooked: mixed.booked.length,
        slotsExhausted: mixed.exhausted(),
        ...(await eventLagAfterDrain(baseUrl, { baseline })),
      }),
    };
  },
};

export const telemedicineScenarios: readonly Scenario[] = [
  telemedSearch,
  telemedBook,
  telemedMixed,
  telemedSustained,
];
