-- Every read of open slots is per doctor: search's availability filter (an
-- EXISTS per candidate doctor), next_available_at, listSlots. Keyed
-- (starts_at, doctor_id), the old partial index made the planner scan every
-- open slot of every doctor in the window for each candidate (18 ms for a
-- 7-day filter over 160k slots, before statistics caught up with a bulk
-- materialisation); keyed (doctor_id, starts_at), each EXISTS is one index
-- probe and never walks past held or booked slots.
create index slots_open_doctor_start_idx on telemedicine.slots (doctor_id, starts_at) where status = 'OPEN';
drop index telemedicine.slots_open_start_idx;

-- Payments still waiting for their intent: a booking creates its intent
-- inline and enqueues a retry only when that fails, so the minute sweeper
-- looks here for any whose process died in between. Almost always empty.
create index payments_creating_idx on telemedicine.payments (created_at) where status = 'CREATING';
