-- Telemedicine: patients and doctors, availability and slots, consultations
-- (booking saga), payments and refunds, prescriptions, reviews, consents and
-- the analytics rollups. docs/services/telemedicine.md has the ER diagram and
-- the invariants; each invariant below is enforced here, not only in code.
--
-- Ids: a patient's and a doctor's id is their platform account id. Money is
-- integer minor units with an ISO 4217 currency. Times are timestamptz (UTC);
-- local times only exist in schedules, next to their IANA zone.

create extension if not exists btree_gist;
create extension if not exists pg_trgm;

-- Patients. Every personal field but `sex` is field-encrypted (`kv1.` values,
-- AAD `telemedicine.patients:<column>:<id>`); nothing here is searchable.
create table telemedicine.patients (
  id uuid primary key,
  full_name text not null,
  date_of_birth text not null,
  sex text not null check (sex in ('female', 'male', 'intersex', 'unspecified')),
  phone text,
  emergency_contact text,
  allergies text,
  version integer not null default 1 check (version >= 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- array_to_string is only STABLE (it depends on the element type's output
-- function); for text[] it is in fact immutable, which a generated column needs.
create function telemedicine.words_of(value text[]) returns text
  language sql immutable parallel safe
  as $$ select array_to_string(value, ' ') $$;

-- Doctors. Public profile fields are plain (they are listed and searched);
-- only VERIFIED doctors are listed or bookable.
create table telemedicine.doctors (
  id uuid primary key,
  full_name text not null check (char_length(full_name) between 1 and 200),
  specialties text[] not null check (cardinality(specialties) between 1 and 10),
  languages text[] not null check (cardinality(languages) between 1 and 20),
  qualifications text[] not null default '{}' check (cardinality(qualifications) <= 20),
  registration_number text not null check (char_length(registration_number) between 3 and 64),
  years_of_experience integer not null check (years_of_experience between 0 and 80),
  fee_minor bigint not null check (fee_minor > 0 and fee_minor <= 10000000),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  bio text not null default '' check (char_length(bio) <= 4000),
  time_zone text not null check (char_length(time_zone) between 1 and 64),
  status text not null default 'PENDING' check (status in ('PENDING', 'VERIFIED', 'SUSPENDED')),
  verified_at timestamptz,
  verified_by uuid,
  rating_count integer not null default 0 check (rating_count >= 0),
  rating_sum integer not null default 0 check (rating_sum >= 0),
  -- Average of the reviews, kept with them in one update; null until the first review.
  rating numeric(3, 2) generated always as (
    case when rating_count = 0 then null else round(rating_sum::numeric / rating_count, 2) end
  ) stored,
  -- The earliest OPEN future slot, maintained by the slot writers; "sort by next available".
  next_available_at timestamptz,
  search_document tsvector generated always as (
    setweight(to_tsvector('simple', full_name), 'A') ||
    setweight(to_tsvector('english', telemedicine.words_of(specialties)), 'B') ||
    setweight(to_tsvector('english', bio), 'D')
  ) stored,
  version integer not null default 1 check (version >= 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (registration_number),
  constraint doctors_verified_has_verifier check (status <> 'VERIFIED' or verified_at is not null)
);
create index doctors_search_idx on telemedicine.doctors using gin (search_document);
create index doctors_name_trgm_idx on telemedicine.doctors using gin (full_name gin_trgm_ops);
create index doctors_specialties_idx on telemedicine.doctors using gin (specialties);
create index doctors_languages_idx on telemedicine.doctors using gin (languages);
create index doctors_verified_fee_idx on telemedicine.doctors (fee_minor, id) where status = 'VERIFIED';
create index doctors_verified_next_idx on telemedicine.doctors (next_available_at, id) where status = 'VERIFIED';

-- Weekly availability in the doctor's own zone. One schedule per doctor;
-- rules are its weekly windows (ISO weekday 1 = Monday).
create table telemedicine.schedules (
  doctor_id uuid primary key references telemedicine.doctors (id),
  time_zone text not null check (char_length(time_zone) between 1 and 64),
  slot_minutes integer not null check (slot_minutes between 5 and 240),
  buffer_minutes integer not null default 0 check (buffer_minutes between 0 and 120),
  version integer not null default 1 check (version >= 1),
  updated_at timestamptz not null default now()
);

create table telemedicine.schedule_rules (
  id uuid primary key,
  doctor_id uuid not null references telemedicine.schedules (doctor_id) on delete cascade,
  weekday smallint not null check (weekday between 1 and 7),
  start_local time not null,
  end_local time not null,
  check (start_local < end_local)
);
create index schedule_rules_doctor_idx on telemedicine.schedule_rules (doctor_id, weekday);

-- A date override replaces that local date's weekly windows: with windows it
-- is extra or different hours; with none (is_available false) a day off.
create table telemedicine.schedule_overrides (
  id uuid primary key,
  doctor_id uuid not null references telemedicine.schedules (doctor_id) on delete cascade,
  local_date date not null,
  is_available boolean not null,
  start_local time,
  end_local time,
  check (
    (is_available and start_local is not null and end_local is not null and start_local < end_local)
    or (not is_available and start_local is null and end_local is null)
  )
);
create index schedule_overrides_doctor_idx on telemedicine.schedule_overrides (doctor_id, local_date);

-- Time off in absolute time (a conference, leave): no slot is offered inside it.
create table telemedicine.time_off (
  id uuid primary key,
  doctor_id uuid not null references telemedicine.doctors (id),
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  reason text not null default '' check (char_length(reason) <= 500),
  created_at timestamptz not null default now(),
  check (starts_at < ends_at)
);
create index time_off_doctor_idx on telemedicine.time_off (doctor_id, starts_at);

-- Bookable slots, materialised ahead from the schedule by a job. OPEN → HELD
-- (a booking awaits payment) → BOOKED; a hold that lapses returns to OPEN.
-- WITHDRAWN: a schedule edit removed an unbooked slot that has history (a
-- slot without history is deleted instead).
create table telemedicine.slots (
  id uuid primary key,
  doctor_id uuid not null references telemedicine.doctors (id),
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  status text not null default 'OPEN' check (status in ('OPEN', 'HELD', 'BOOKED', 'WITHDRAWN')),
  hold_expires_at timestamptz,
  version integer not null default 1 check (version >= 1),
  created_at timestamptz not null default now(),
  check (starts_at < ends_at),
  check ((status = 'HELD') = (hold_expires_at is not null)),
  -- No two live slots of one doctor overlap, whatever the schedule says.
  constraint slots_no_overlap exclude using gist (
    doctor_id with =, tstzrange(starts_at, ends_at) with &&
  ) where (status <> 'WITHDRAWN')
);
create index slots_doctor_start_idx on telemedicine.slots (doctor_id, starts_at);
create index slots_open_start_idx on telemedicine.slots (starts_at, doctor_id) where status = 'OPEN';

-- Consultations. PENDING_PAYMENT (slot held) → SCHEDULED (paid) →
-- IN_PROGRESS → COMPLETED; CANCELLED and NO_SHOW; EXPIRED when the payment
-- failed or the hold ran out. `reason` and `clinical_notes` are
-- field-encrypted (AAD `telemedicine.consultations:<column>:<id>`).
create table telemedicine.consultations (
  id uuid primary key,
  patient_id uuid not null references telemedicine.patients (id),
  doctor_id uuid not null references telemedicine.doctors (id),
  slot_id uuid not null references telemedicine.slots (id),
  status text not null check (
    status in ('PENDING_PAYMENT', 'SCHEDULED', 'IN_PROGRESS', 'COMPLETED', 'CANCELLED', 'NO_SHOW', 'EXPIRED')
  ),
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  hold_expires_at timestamptz,
  fee_minor bigint not null check (fee_minor > 0),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  specialty text not null,
  reason text,
  clinical_notes text,
  consent_version text not null,
  consented_at timestamptz not null,
  rescheduled_from_slot_id uuid references telemedicine.slots (id),
  started_at timestamptz,
  completed_at timestamptz,
  cancelled_at timestamptz,
  cancelled_by text check (cancelled_by in ('patient', 'doctor', 'admin', 'system')),
  cancel_reason text check (char_length(cancel_reason) <= 500),
  expired_reason text check (expired_reason in ('payment_failed', 'hold_expired')),
  version integer not null default 1 check (version >= 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (starts_at < ends_at),
  check ((status = 'PENDING_PAYMENT') = (hold_expires_at is not null))
);
-- The double-booking guarantee: at most one live consultation per slot.
create unique index consultations_one_active_per_slot on telemedicine.consultations (slot_id)
  where status in ('PENDING_PAYMENT', 'SCHEDULED', 'IN_PROGRESS', 'COMPLETED', 'NO_SHOW');
create index consultations_patient_idx on telemedicine.consultations (patient_id, starts_at desc, id);
create index consultations_doctor_idx on telemedicine.consultations (doctor_id, starts_at desc, id);
create index consultations_pending_idx on telemedicine.consultations (hold_expires_at) where status = 'PENDING_PAYMENT';

-- Consent to treatment, recorded with the booking (and kept if it is cancelled).
create table telemedicine.consents (
  id uuid primary key,
  patient_id uuid not null references telemedicine.patients (id),
  consultation_id uuid not null references telemedicine.consultations (id),
  kind text not null check (kind in ('treatment', 'telehealth')),
  version text not null check (char_length(version) between 1 and 32),
  given_at timestamptz not null,
  unique (consultation_id, kind)
);
create index consents_patient_idx on telemedicine.consents (patient_id, given_at);

-- One payment per consultation booking attempt; the provider's intent id is
-- unique so a webhook finds exactly one row.
create table telemedicine.payments (
  id uuid primary key,
  consultation_id uuid not null unique references telemedicine.consultations (id),
  patient_id uuid not null references telemedicine.patients (id),
  provider text not null check (char_length(provider) between 1 and 32),
  provider_intent_id text,
  client_secret text,
  amount_minor bigint not null check (amount_minor > 0),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  status text not null check (
    status in ('CREATING', 'REQUIRES_PAYMENT', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'REFUNDED', 'PARTIALLY_REFUNDED')
  ),
  refunded_minor bigint not null default 0 check (refunded_minor >= 0),
  failure_code text,
  version integer not null default 1 check (version >= 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (provider, provider_intent_id),
  check (refunded_minor <= amount_minor)
);

create table telemedicine.refunds (
  id uuid primary key,
  payment_id uuid not null references telemedicine.payments (id),
  amount_minor bigint not null check (amount_minor > 0),
  reason text not null check (
    reason in ('patient_cancelled', 'doctor_cancelled', 'admin', 'no_show_policy', 'late_payment')
  ),
  status text not null check (status in ('PENDING', 'SUCCEEDED', 'FAILED')),
  provider_refund_id text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- A payment is refunded at most once per reason (a cancellation cannot refund twice).
  unique (payment_id, reason)
);

-- Webhook events already processed, by the provider's event id: a redelivered
-- webhook finds its id here and changes nothing.
create table telemedicine.payment_webhook_events (
  provider text not null,
  event_id text not null,
  event_type text not null,
  received_at timestamptz not null default now(),
  primary key (provider, event_id)
);

-- Prescriptions: immutable once issued. A correction is a new row whose
-- `supersedes_id` names the one it replaces (which becomes SUPERSEDED; only
-- the status of an old row ever changes). The content (items, diagnosis,
-- advice) is field-encrypted; `signature` is Ed25519 over the canonical
-- document, by the key `signing_key_id`.
create table telemedicine.prescriptions (
  id uuid primary key,
  consultation_id uuid not null references telemedicine.consultations (id),
  patient_id uuid not null references telemedicine.patients (id),
  doctor_id uuid not null references telemedicine.doctors (id),
  version integer not null check (version >= 1),
  supersedes_id uuid unique references telemedicine.prescriptions (id),
  status text not null check (status in ('ISSUED', 'SUPERSEDED')),
  content text not null,
  document_digest text not null,
  signature text not null,
  signing_key_id text not null,
  issued_at timestamptz not null,
  superseded_at timestamptz,
  unique (consultation_id, version),
  check ((version = 1) = (supersedes_id is null))
);
create index prescriptions_patient_idx on telemedicine.prescriptions (patient_id, issued_at desc);

-- One review per completed consultation; the doctor's rating moves with it.
create table telemedicine.reviews (
  consultation_id uuid primary key references telemedicine.consultations (id),
  patient_id uuid not null references telemedicine.patients (id),
  doctor_id uuid not null references telemedicine.doctors (id),
  rating smallint not null check (rating between 1 and 5),
  comment text not null default '' check (char_length(comment) <= 2000),
  created_at timestamptz not null default now()
);
create index reviews_doctor_idx on telemedicine.reviews (doctor_id, created_at desc);

-- Data exports (exportMyData): the job writes the archive; the patient fetches it.
create table telemedicine.data_exports (
  id uuid primary key,
  patient_id uuid not null references telemedicine.patients (id),
  status text not null check (status in ('PENDING', 'READY', 'FAILED')),
  -- Field-encrypted JSON archive (AAD `telemedicine.data_exports:archive:<id>`).
  archive text,
  requested_at timestamptz not null,
  completed_at timestamptz,
  expires_at timestamptz
);
create index data_exports_patient_idx on telemedicine.data_exports (patient_id, requested_at desc);

-- Analytics rollups, maintained by event subscribers (never by scanning the
-- hot tables on request). Per UTC day and doctor; the specialty is the one the
-- consultation was booked under.
create table telemedicine.analytics_daily (
  day date not null,
  doctor_id uuid not null,
  specialty text not null,
  currency char(3) not null,
  booked integer not null default 0,
  confirmed integer not null default 0,
  completed integer not null default 0,
  cancelled integer not null default 0,
  no_shows integer not null default 0,
  expired integer not null default 0,
  revenue_minor bigint not null default 0,
  refunds_minor bigint not null default 0,
  slots_offered integer not null default 0,
  slots_booked integer not null default 0,
  primary key (day, doctor_id, specialty, currency)
);
create index analytics_daily_doctor_idx on telemedicine.analytics_daily (doctor_id, day);
