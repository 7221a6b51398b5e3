import { formatVersionEtag, type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import type { RequestOrigin } from '../compliance/clinical-access.ts';
import {
  DoctorIdParams,
  DoctorIfMatchHeaders,
  DoctorPageResponse,
  DoctorResponse,
  ListDoctorsQuery,
  PublicDoctorResponse,
  PutDoctorProfileBody,
  SuspendDoctorBody,
} from './doctor.schemas.ts';
import type { DoctorService } from './doctor.service.ts';
import type { Doctor } from './doctor.ts';

const TAGS = ['doctors'];
const SECURITY = [{ bearerAuth: [] }];

export function toPublicDoctorResponse(doctor: Doctor): Static<typeof PublicDoctorResponse> {
  return {
    id: doctor.id,
    full_name: doctor.fullName,
    specialties: doctor.specialties,
    languages: doctor.languages,
    qualifications: doctor.qualifications,
    years_of_experience: doctor.yearsOfExperience,
    fee_minor: doctor.feeMinor,
    currency: doctor.currency,
    bio: doctor.bio,
    time_zone: doctor.timeZone,
    rating: doctor.rating,
    rating_count: doctor.ratingCount,
    next_available_at: doctor.nextAvailableAt?.toISOString() ?? null,
  };
}

export function toDoctorResponse(doctor: Doctor): Static<typeof DoctorResponse> {
  return {
    ...toPublicDoctorResponse(doctor),
    registration_number: doctor.registrationNumber,
    status: doctor.status,
    verified_at: doctor.verifiedAt?.toISOString() ?? null,
    verified_by: doctor.verifiedBy,
    version: doctor.version,
    created_at: doctor.createdAt.toISOString(),
    updated_at: doctor.updatedAt.toISOString(),
  };
}

// Every route below but the public one declares a permission, so the access hook has set the principal.
function principalOf(request: FastifyRequest): Principal {
  const { principal } = request;
  if (principal === undefined) throw new Error('doctors route reached without a principal');
  return principal;
}

function originOf(request: FastifyRequest): RequestOrigin {
  const userAgent = request.headers['user-agent'];
  return { requestId: request.id, ip: request.ip, ...(userAgent === undefined ? {} : { userAgent }) };
}

function ifMatchOf(request: FastifyRequest): string | undefined {
  const value = request.headers['if-match'];
  return Array.isArray(value) ? value.join(', ') : value;
}

export function registerDoctorRoutes(app: KeelApp, doctors: DoctorService): void {
  app.put(
    '/doctors/me',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.manageDoctorProfile },
      schema: {
        operationId: 'putMyDoctorProfile',
        tags: TAGS,
        summary: 'Create or update your doctor profile',
        security: SECURITY,
        description:
          'A new profile is PENDING until an admin verifies it; only verified doctors are listed and ' +
          'bookable. Changing the registration number of a verified profile sends it back to PENDING. ' +
          '201 when created, 200 when updated; the ETag carries its version and `If-Match` is optional ' +
          '(412 `telemedicine.version_mismatch` when stale). Registration numbers are unique (409 ' +
          '`telemedicine.registration_number_taken`).',
        headers: DoctorIfMatchHeaders,
        body: PutDoctorProfileBody,
        response: {
          200: { ...DoctorResponse, description: 'The updated profile' },
          201: { ...DoctorResponse, description: 'The created profile (PENDING)' },
          ...problemResponses(400, 401, 403, 409, 412, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const { doctor, isCreated } = await doctors.saveMyProfile(
        principalOf(request),
        {
          fullName: body.full_name,
          specialties: body.specialties,
          languages: body.languages,
          qualifications: body.qualifications ?? [],
          registrationNumber: body.registration_number,
          yearsOfExperience: body.years_of_experience,
          feeMinor: body.fee_minor,
          currency: body.currency,
          bio: body.bio ?? '',
          timeZone: body.time_zone,
        },
        { ifMatch: ifMatchOf(request) },
      );
      if (isCreated) reply.code(201).header('location', '/telemedicine/doctors/me');
      return reply.header('etag', formatVersionEtag(doctor.version)).send(toDoctorResponse(doctor));
    },
  );

  app.get(
    '/doctors/me',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.manageDoctorProfile },
      schema: {
        operationId: 'getMyDoctorProfile',
        tags: TAGS,
        summary: 'Fetch your doctor profile',
        security: SECURITY,
        description:
          'Your profile in any status, with its verification. 404 `telemedicine.doctor_profile_not_found` ' +
          'until you create one.',
        response: {
          200: { ...DoctorResponse, description: 'Your profile; ETag carries its version' },
          ...problemResponses(401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const doctor = await doctors.getMyProfile(principalOf(request));
      return reply.header('etag', formatVersionEtag(doctor.version)).send(toDoctorResponse(doctor));
    },
  );

  app.get(
    '/doctors',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.verifyDoctors },
      schema: {
        operationId: 'listDoctors',
        tags: TAGS,
        summary: 'List doctor profiles for verification (admins)',
        security: SECURITY,
        description:
          'Every profile, oldest first, optionally in one status (`?status=PENDING` is the verification ' +
          'queue). Keyset-paginated: pass `next_cursor` back as `cursor` with the same filter.',
        querystring: ListDoctorsQuery,
        response: { 200: DoctorPageResponse, ...problemResponses(400, 401, 403, 429) },
      },
    },
    async (request) => {
      const { query } = request;
      const page = await doctors.listDoctors({
        limit: query.limit,
        ...(query.status === undefined ? {} : { status: query.status }),
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      });
      return { items: page.items.map(toDoctorResponse), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/doctors/:doctorId',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'getDoctor',
        tags: TAGS,
        summary: 'Fetch a verified doctor’s public profile',
        description:
          'Public. Pending and suspended doctors do not exist here (404 `telemedicine.doctor_not_found`).',
        params: DoctorIdParams,
        response: {
          200: PublicDoctorResponse,
          ...problemResponses(400, 404, 429),
        },
      },
    },
    async (request) => toPublicDoctorResponse(await doctors.getPublicDoctor(request.params.doctorId)),
  );

  app.post(
    '/doctors/:doctorId/verify',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.verifyDoctors },
      schema: {
        operationId: 'verifyDoctor',
        tags: TAGS,
        summary: 'Verify a doctor (admins)',
        security: SECURITY,
        description:
          'PENDING → VERIFIED, or reinstates a SUSPENDED doctor; records who verified and when. A ' +
          'verified doctor gets 409 `telemedicine.doctor_already_verified`. Audited ' +
          '(`telemedicine.doctor_verified`).',
        params: DoctorIdParams,
        response: {
          200: { ...DoctorResponse, description: 'The verified profile' },
          ...problemResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const doctor = await doctors.verifyDoctor(
        principalOf(request),
        request.params.doctorId,
        originOf(request),
      );
      return reply.header('etag', formatVersionEtag(doctor.version)).send(toDoctorResponse(doctor));
    },
  );

  app.post(
    '/doctors/:doctorId/suspend',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.verifyDoctors },
      schema: {
        operationId: 'suspendDoctor',
        tags: TAGS,
        summary: 'Suspend a doctor (admins)',
        security: SECURITY,
        description:
          'PENDING or VERIFIED → SUSPENDED: the doctor disappears from search and public profiles. The ' +
          'reason is kept in the audit log (`telemedicine.doctor_suspended`). A suspended doctor gets 409 ' +
          '`telemedicine.doctor_already_suspended`.',
        params: DoctorIdParams,
        body: SuspendDoctorBody,
        response: {
          200: { ...DoctorResponse, description: 'The suspended profile' },
          ...problemResponses(400, 401, 403, 404, 409, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const doctor = await doctors.suspendDoctor(
        principalOf(request),
        request.params.doctorId,
        request.body.reason,
        originOf(request),
      );
      return reply.header('etag', formatVersionEtag(doctor.version)).send(toDoctorResponse(doctor));
    },
  );
}
