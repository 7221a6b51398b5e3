import { formatVersionEtag, type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import type { RequestOrigin } from '../compliance/clinical-access.ts';
import {
  PatientIdParams,
  PatientIfMatchHeaders,
  PatientProfileResponse,
  PutPatientProfileBody,
} from './patient.schemas.ts';
import type { PatientService } from './patient.service.ts';
import type { PatientProfile } from './patient.ts';

const TAGS = ['patients'];
const SECURITY = [{ bearerAuth: [] }];

export function toPatientProfileResponse(profile: PatientProfile): Static<typeof PatientProfileResponse> {
  return {
    id: profile.id,
    full_name: profile.fullName,
    date_of_birth: profile.dateOfBirth,
    sex: profile.sex,
    phone: profile.phone,
    emergency_contact: profile.emergencyContact,
    allergies: profile.allergies,
    version: profile.version,
    created_at: profile.createdAt.toISOString(),
    updated_at: profile.updatedAt.toISOString(),
  };
}

// Every route below declares a permission, so the access hook has set the principal.
function principalOf(request: FastifyRequest): Principal {
  const { principal } = request;
  if (principal === undefined) throw new Error('patients route reached without a principal');
  return principal;
}

function originOf(request: FastifyRequest): RequestOrigin {
  const userAgent = request.headers['user-agent'];
  return {
    requestId: request.id,
    ip: request.ip,
    ...(userAgent === undefined ? {} : { userAgent }),
  };
}

function ifMatchOf(request: FastifyRequest): string | undefined {
  const value = request.headers['if-match'];
  return Array.isArray(value) ? value.join(', ') : value;
}

export function registerPatientRoutes(app: KeelApp, patients: PatientService): void {
  app.put(
    '/patients/me',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.managePatientProfile },
      schema: {
        operationId: 'putMyPatientProfile',
        tags: TAGS,
        summary: 'Create or replace your patient profile',
        security: SECURITY,
        description:
          'Replaces the whole profile (fields left out are cleared). 201 when it is created, 200 when ' +
          'replaced; the ETag carries its version. `If-Match` is optional: when sent it must name the ' +
          'current version (412 `telemedicine.version_mismatch` otherwise). Every personal field but ' +
          '`sex` is stored encrypted, and the write is recorded in your access log.',
        headers: PatientIfMatchHeaders,
        body: PutPatientProfileBody,
        response: {
          200: { ...PatientProfileResponse, description: 'The replaced profile' },
          201: { ...PatientProfileResponse, description: 'The created profile' },
          ...problemResponses(400, 401, 403, 412, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const { profile, isCreated } = await patients.saveMyProfile(
        principalOf(request),
        {
          fullName: body.full_name,
          dateOfBirth: body.date_of_birth,
          sex: body.sex,
          phone: body.phone ?? null,
          emergencyContact: body.emergency_contact ?? null,
          allergies: body.allergies ?? null,
        },
        { ifMatch: ifMatchOf(request), origin: originOf(request) },
      );
      if (isCreated) reply.code(201).header('location', '/telemedicine/patients/me');
      return reply.header('etag', formatVersionEtag(profile.version)).send(toPatientProfileResponse(profile));
    },
  );

  app.get(
    '/patients/me',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.managePatientProfile },
      schema: {
        operationId: 'getMyPatientProfile',
        tags: TAGS,
        summary: 'Fetch your patient profile',
        security: SECURITY,
        description:
          'Your decrypted profile; the read is recorded in your access log. 404 ' +
          '`telemedicine.patient_profile_not_found` until you create one.',
        response: {
          200: { ...PatientProfileResponse, description: 'Your profile; ETag carries its version' },
          ...problemResponses(401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const profile = await patients.getMyProfile(principalOf(request), originOf(request));
      return reply.header('etag', formatVersionEtag(profile.version)).send(toPatientProfileResponse(profile));
    },
  );

  app.get(
    '/patients/:patientId',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readConsultations },
      schema: {
        operationId: 'getPatientProfile',
        tags: TAGS,
        summary: 'Fetch a patient’s profile (their treating doctor)',
        security: SECURITY,
        description:
          'Only a doctor with a SCHEDULED, IN_PROGRESS or COMPLETED consultation with this patient (and ' +
          'the patient themselves) may read it; the read is recorded in the patient’s access log with ' +
          'purpose `treatment`. To anyone else, support and admins included, it does not exist (404 ' +
          '`telemedicine.patient_profile_not_found`).',
        params: PatientIdParams,
        response: {
          200: { ...PatientProfileResponse, description: 'The profile; ETag carries its version' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const profile = await patients.getPatientProfile(
        principalOf(request),
        request.params.patientId,
        originOf(request),
      );
      return reply.header('etag', formatVersionEtag(profile.version)).send(toPatientProfileResponse(profile));
    },
  );
}
