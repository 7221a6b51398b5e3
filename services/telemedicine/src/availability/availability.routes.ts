import { formatVersionEtag, type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { StoredResponse } from '@keel/platform/idempotency';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import {
  DoctorIdParams,
  OverrideBody,
  OverrideDateParams,
  OverrideListResponse,
  OverrideResponse,
  OverridesQuery,
  ScheduleBody,
  ScheduleIfMatchHeaders,
  ScheduleResponse,
  SlotListResponse,
  SlotsQuery,
  TimeOffBody,
  TimeOffIdParams,
  TimeOffListResponse,
  TimeOffResponse,
} from './availability.schemas.ts';
import type { AvailabilityOwner, AvailabilityService, SlotListing } from './availability.service.ts';
import type { DateOverride, Schedule, ScheduleInput, TimeOff } from './schedule.ts';
import { createZoneFormatter, type IsoWeekday } from './time-zone.ts';

const TAGS = ['telemedicine'];
const SECURITY = [{ bearerAuth: [] }];
const P = TELEMEDICINE_PERMISSIONS;

export function toScheduleResponse(schedule: Schedule): Static<typeof ScheduleResponse> {
  return {
    doctor_id: schedule.doctorId,
    time_zone: schedule.timeZone,
    slot_minutes: schedule.slotMinutes,
    buffer_minutes: schedule.bufferMinutes,
    rules: schedule.rules.map((rule) => ({ weekday: rule.weekday, start: rule.start, end: rule.end })),
    version: schedule.version,
    updated_at: schedule.updatedAt.toISOString(),
  };
}

function toOverrideResponse(override: DateOverride): Static<typeof OverrideResponse> {
  return {
    date: override.localDate,
    is_available: override.isAvailable,
    windows: override.windows.map((window) => ({ start: window.start, end: window.end })),
  };
}

function toTimeOffResponse(timeOff: TimeOff): Static<typeof TimeOffResponse> {
  return {
    id: timeOff.id,
    starts_at: timeOff.startsAt.toISOString(),
    ends_at: timeOff.endsAt.toISOString(),
    reason: timeOff.reason,
    created_at: timeOff.createdAt.toISOString(),
  };
}

function toSlotListResponse(listing: SlotListing): Static<typeof SlotListResponse> {
  const formatLocal = createZoneFormatter(listing.timeZone);
  return {
    doctor_id: listing.doctorId,
    time_zone: listing.timeZone,
    from: listing.from.toISOString(),
    to: listing.to.toISOString(),
    items: listing.slots.map((slot) => ({
      id: slot.id,
      starts_at: slot.startsAt.toISOString(),
      ends_at: slot.endsAt.toISOString(),
      local_start: formatLocal(slot.startsAt.getTime()),
      local_end: formatLocal(slot.endsAt.getTime()),
    })),
  };
}

function toScheduleInput(body: Static<typeof ScheduleBody>): ScheduleInput {
  return {
    timeZone: body.time_zone,
    slotMinutes: body.slot_minutes,
    bufferMinutes: body.buffer_minutes ?? 0,
    rules: body.rules.map((rule) => ({
      // The schema bounds it to 1-7.
      weekday: rule.weekday as IsoWeekday,
      start: rule.start,
      end: rule.end,
    })),
  };
}

function timeOffCreated(timeOff: TimeOff) {
  return {
    statusCode: 201 as const,
    headers: { location: `/telemedicine/doctors/me/time-off/${timeOff.id}` },
    body: toTimeOffResponse(timeOff),
  } satisfies StoredResponse;
}

// Every route below but listSlots declares a permission, so the access hook has set the principal.
function principalOf(request: FastifyRequest): Principal {
  const { principal } = request;
  if (principal === undefined) throw new Error('availability route reached without a principal');
  return principal;
}

function self(request: FastifyRequest): AvailabilityOwner {
  return { doctorId: principalOf(request).id, isSelf: true };
}

function ifMatchOf(request: FastifyRequest): string | undefined {
  const value = request.headers['if-match'];
  return Array.isArray(value) ? value.join(', ') : value;
}

const SCHEDULE_DESCRIPTION =
  'Weekly windows in the doctor’s own IANA zone, cut into `slot_minutes` slots with `buffer_minutes` ' +
  'between them. Windows of one weekday must not overlap (`telemedicine.overlapping_windows`, with a ' +
  'pointer to the offending rule). Replaces the whole schedule; `If-Match` is optional, a stale one ' +
  'is 412 `telemedicine.version_mismatch`. Slots follow before the answer: new hours are offered, ' +
  'dropped ones withdrawn; HELD and BOOKED slots are never touched.';

export function registerAvailabilityRoutes(app: KeelApp, availability: AvailabilityService): void {
  app.get(
    '/doctors/me/schedule',
    {
      config: { access: P.manageAvailability },
      schema: {
        operationId: 'getMySchedule',
        tags: TAGS,
        summary: 'Fetch my weekly schedule',
        security: SECURITY,
        description:
          'The calling doctor’s schedule; 404 `telemedicine.schedule_not_found` before the first PUT, 422 ' +
          '`telemedicine.doctor_profile_required` without a doctor profile.',
        response: {
          200: { ...ScheduleResponse, description: 'The schedule; ETag carries its version' },
          ...problemResponses(401, 403, 404, 422, 429),
        },
      },
    },
    async (request, reply) => {
      const schedule = await availability.getSchedule(self(request));
      return reply.header('etag', formatVersionEtag(schedule.version)).send(toScheduleResponse(schedule));
    },
  );

  app.put(
    '/doctors/me/schedule',
    {
      config: { access: P.manageAvailability },
      schema: {
        operationId: 'putMySchedule',
        tags: TAGS,
        summary: 'Set my weekly schedule',
        security: SECURITY,
        description: SCHEDULE_DESCRIPTION,
        headers: ScheduleIfMatchHeaders,
        body: ScheduleBody,
        response: {
          200: { ...ScheduleResponse, description: 'The replaced schedule; ETag carries its version' },
          201: { ...ScheduleResponse, description: 'The first schedule; ETag carries its version' },
          ...problemResponses(400, 401, 403, 412, 415, 422, 429),
        },
      },
    },
    async (request, reply) => {
      const { schedule, isCreated } = await availability.replaceSchedule(
        self(request),
        toScheduleInput(request.body),
        ifMatchOf(request),
      );
      return reply
        .code(isCreated ? 201 : 200)
        .header('etag', formatVersionEtag(schedule.version))
        .send(toScheduleResponse(schedule));
    },
  );

  app.get(
    '/doctors/me/schedule/overrides',
    {
      config: { access: P.manageAvailability },
      schema: {
        operationId: 'listMyScheduleOverrides',
        tags: TAGS,
        summary: 'List my date overrides',
        security: SECURITY,
        description:
          'Overrides of local dates in [from, to] (inclusive), by date. Default: today (in the schedule’s ' +
          'zone) and the next 90 days; at most 366 days.',
        querystring: OverridesQuery,
        response: { 200: OverrideListResponse, ...problemResponses(400, 401, 403, 422, 429) },
      },
    },
    async (request) => {
      const { query } = request;
      const overrides = await availability.listOverrides(self(request), {
        ...(query.from === undefined ? {} : { from: query.from }),
        ...(query.to === undefined ? {} : { to: query.to }),
      });
      return { items: overrides.map(toOverrideResponse) };
    },
  );

  app.put(
    '/doctors/me/schedule/overrides/:date',
    {
      config: { access: P.manageAvailability },
      schema: {
        operationId: 'putMyScheduleOverride',
        tags: TAGS,
        summary: 'Override one local date',
        security: SECURITY,
        description:
          'Replaces that date’s weekly windows: `is_available: true` with `windows` (other hours, or hours ' +
          'on a day without rules), `is_available: false` without windows for a day off. Needs a weekly ' +
          'schedule first (422 `telemedicine.schedule_required`). Slots follow before the answer.',
        params: OverrideDateParams,
        body: OverrideBody,
        response: { 200: OverrideResponse, ...problemResponses(400, 401, 403, 415, 422, 429) },
      },
    },
    async (request) => {
      const override = await availability.putOverride(self(request), request.params.date, {
        isAvailable: request.body.is_available,
        windows: request.body.windows,
      });
      return toOverrideResponse(override);
    },
  );

  app.delete(
    '/doctors/me/schedule/overrides/:date',
    {
      config: { access: P.manageAvailability },
      schema: {
        operationId: 'deleteMyScheduleOverride',
        tags: TAGS,
        summary: 'Remove a date override',
        security: SECURITY,
        description:
          'The date follows the weekly windows again. Removing an override that is not there is a no-op.',
        params: OverrideDateParams,
        response: {
          204: { type: 'null', description: 'Removed' },
          ...problemResponses(400, 401, 403, 422, 429),
        },
      },
    },
    async (request, reply) => {
      await availability.removeOverride(self(request), request.params.date);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/doctors/me/time-off',
    {
      config: { access: P.manageAvailability, idempotency: { required: false } },
      schema: {
        operationId: 'addMyTimeOff',
        tags: TAGS,
        summary: 'Take time off',
        security: SECURITY,
        description:
          'Absolute instants (a conference, leave): no slot intersecting it is offered, and open ones are ' +
          'withdrawn before the answer; booked consultations stay (cancel them separately). At most 366 ' +
          'days; must end in the future. `Idempotency-Key` is optional and makes a retry safe.',
        headers: {
          type: 'object',
          properties: {
            'idempotency-key': { type: 'string', description: '1-255 printable ASCII characters' },
          },
        },
        body: TimeOffBody,
        response: {
          201: { ...TimeOffResponse, description: 'The time off' },
          ...problemResponses(400, 401, 403, 409, 415, 422, 429),
        },
      },
    },
    async (request, reply) => {
      const claim = request.idempotency;
      const { body } = request;
      const timeOff = await availability.addTimeOff(
        self(request),
        { startsAt: new Date(body.starts_at), endsAt: new Date(body.ends_at), reason: body.reason ?? '' },
        claim === undefined ? {} : { idempotency: { claim, respond: timeOffCreated } },
      );
      const response = timeOffCreated(timeOff);
      return reply.code(response.statusCode).headers(response.headers).send(response.body);
    },
  );

  app.get(
    '/doctors/me/time-off',
    {
      config: { access: P.manageAvailability },
      schema: {
        operationId: 'listMyTimeOff',
        tags: TAGS,
        summary: 'List my current and upcoming time off',
        security: SECURITY,
        description: 'Time off that has not ended, earliest first (at most 500).',
        response: { 200: TimeOffListResponse, ...problemResponses(401, 403, 422, 429) },
      },
    },
    async (request) => ({ items: (await availability.listTimeOff(self(request))).map(toTimeOffResponse) }),
  );

  app.delete(
    '/doctors/me/time-off/:timeOffId',
    {
      config: { access: P.manageAvailability },
      schema: {
        operationId: 'deleteMyTimeOff',
        tags: TAGS,
        summary: 'Cancel time off',
        security: SECURITY,
        description:
          'Its hours are offered again as the schedule says. Another doctor’s time off is 404 ' +
          '`telemedicine.time_off_not_found`, like a missing one.',
        params: TimeOffIdParams,
        response: {
          204: { type: 'null', description: 'Removed' },
          ...problemResponses(400, 401, 403, 404, 422, 429),
        },
      },
    },
    async (request, reply) => {
      await availability.removeTimeOff(self(request), request.params.timeOffId);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/doctors/:doctorId/schedule',
    {
      config: { access: P.manageAllAvailability },
      schema: {
        operationId: 'getDoctorSchedule',
        tags: TAGS,
        summary: 'Fetch a doctor’s weekly schedule (admin)',
        security: SECURITY,
        description: 'Admins only; an unknown doctor is 404 `telemedicine.doctor_not_found`.',
        params: DoctorIdParams,
        response: {
          200: { ...ScheduleResponse, description: 'The schedule; ETag carries its version' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const schedule = await availability.getSchedule({ doctorId: request.params.doctorId, isSelf: false });
      return reply.header('etag', formatVersionEtag(schedule.version)).send(toScheduleResponse(schedule));
    },
  );

  app.put(
    '/doctors/:doctorId/schedule',
    {
      config: { access: P.manageAllAvailability },
      schema: {
        operationId: 'putDoctorSchedule',
        tags: TAGS,
        summary: 'Set a doctor’s weekly schedule (admin)',
        security: SECURITY,
        description: `Admins only, for any doctor with a profile. ${SCHEDULE_DESCRIPTION}`,
        params: DoctorIdParams,
        headers: ScheduleIfMatchHeaders,
        body: ScheduleBody,
        response: {
          200: { ...ScheduleResponse, description: 'The replaced schedule; ETag carries its version' },
          201: { ...ScheduleResponse, description: 'The first schedule; ETag carries its version' },
          ...problemResponses(400, 401, 403, 404, 412, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const { schedule, isCreated } = await availability.replaceSchedule(
        { doctorId: request.params.doctorId, isSelf: false },
        toScheduleInput(request.body),
        ifMatchOf(request),
      );
      return reply
        .code(isCreated ? 201 : 200)
        .header('etag', formatVersionEtag(schedule.version))
        .send(toScheduleResponse(schedule));
    },
  );

  app.get(
    '/doctors/:doctorId/slots',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'listSlots',
        tags: TAGS,
        summary: 'List a doctor’s open slots',
        description:
          'OPEN future slots of a verified doctor (anyone else: 404 `telemedicine.doctor_not_found`) ' +
          'starting in [from, to), earliest first. `from`/`to` are instants with an offset or dates in ' +
          '`time_zone` (a `to` date includes that day); default now to 7 days later, at most 31 days ' +
          '(`telemedicine.invalid_range`). `local_start`/`local_end` are the times in `time_zone` ' +
          '(default UTC; an unknown zone is 400 `telemedicine.invalid_time_zone`).',
        params: DoctorIdParams,
        querystring: SlotsQuery,
        response: { 200: SlotListResponse, ...problemResponses(400, 404, 429) },
      },
    },
    async (request) => {
      const { query } = request;
      const listing = await availability.listSlots(request.params.doctorId, {
        ...(query.from === undefined ? {} : { from: query.from }),
        ...(query.to === undefined ? {} : { to: query.to }),
        ...(query.time_zone === undefined ? {} : { timeZone: query.time_zone }),
      });
      return toSlotListResponse(listing);
    },
  );
}
