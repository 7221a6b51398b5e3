import { type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import type { RequestOrigin } from '../compliance/clinical-access.ts';
import {
  ConsultationIdParams,
  ConsultationPageResponse,
  ConsultationResponse,
  ListConsultationsQuery,
} from './consultation.schemas.ts';
import type { ConsultationService } from './consultation.service.ts';
import type { Consultation } from './consultation.ts';

const TAGS = ['telemedicine consultations'];
const SECURITY = [{ bearerAuth: [] }];

/**
 * The consultation as JSON. `reason` only when given: the participant's
 * audited read passes it; every other response (lists, mutations, stored
 * idempotent replays) leaves clinical content out.
 */
export function toConsultationResponse(
  consultation: Omit<Consultation, 'reason'>,
  clinical?: { reason: string | null },
): Static<typeof ConsultationResponse> {
  return {
    id: consultation.id,
    patient_id: consultation.patientId,
    doctor_id: consultation.doctorId,
    slot_id: consultation.slotId,
    status: consultation.status,
    starts_at: consultation.startsAt.toISOString(),
    ends_at: consultation.endsAt.toISOString(),
    hold_expires_at: consultation.holdExpiresAt?.toISOString() ?? null,
    fee_minor: consultation.feeMinor,
    currency: consultation.currency,
    specialty: consultation.specialty,
    ...(clinical === undefined ? {} : { reason: clinical.reason }),
    consent_version: consultation.consentVersion,
    consented_at: consultation.consentedAt.toISOString(),
    rescheduled_from_slot_id: consultation.rescheduledFromSlotId,
    started_at: consultation.startedAt?.toISOString() ?? null,
    completed_at: consultation.completedAt?.toISOString() ?? null,
    cancelled_at: consultation.cancelledAt?.toISOString() ?? null,
    cancelled_by: consultation.cancelledBy,
    cancel_reason: consultation.cancelReason,
    expired_reason: consultation.expiredReason,
    version: consultation.version,
    created_at: consultation.createdAt.toISOString(),
    updated_at: consultation.updatedAt.toISOString(),
  };
}

// Every route below declares a permission, so the access hook has set the principal.
export function principalOf(request: FastifyRequest): Principal {
  const { principal } = request;
  if (principal === undefined) throw new Error('telemedicine route reached without a principal');
  return principal;
}

/** Where a request came from, for the clinical access log. */
export function originOf(request: FastifyRequest): RequestOrigin {
  const userAgent = request.headers['user-agent'];
  return { requestId: request.id, ip: request.ip, ...(userAgent === undefined ? {} : { userAgent }) };
}

export function registerConsultationRoutes(app: KeelApp, consultations: ConsultationService): void {
  app.get(
    '/consultations',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readConsultations },
      schema: {
        operationId: 'listConsultations',
        tags: TAGS,
        summary: 'List consultations, latest start first',
        security: SECURITY,
        description:
          'Patients and doctors see the consultations they take part in; support and admins every ' +
          'consultation. Logistics only: the clinical `reason` is never listed. Filter by `status` ' +
          '(repeatable) and a start window (`from` inclusive, `to` exclusive). Keyset-paginated: pass ' +
          '`next_cursor` back as `cursor` with the same filters.',
        querystring: ListConsultationsQuery,
        response: { 200: ConsultationPageResponse, ...problemResponses(400, 401, 403, 429) },
      },
    },
    async (request) => {
      const { query } = request;
      const page = await consultations.listConsultations(principalOf(request), {
        limit: query.limit,
        ...(query.status === undefined ? {} : { statuses: query.status }),
        ...(query.from === undefined ? {} : { startsFrom: new Date(query.from) }),
        ...(query.to === undefined ? {} : { startsBefore: new Date(query.to) }),
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      });
      return {
        items: page.items.map((consultation) => toConsultationResponse(consultation)),
        next_cursor: page.nextCursor,
      };
    },
  );

  app.get(
    '/consultations/:consultationId',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readConsultations },
      schema: {
        operationId: 'getConsultation',
        tags: TAGS,
        summary: 'Fetch a consultation',
        security: SECURITY,
        description:
          'Its patient and its doctor get all of it, including the clinical `reason`; each such read is ' +
          'recorded in the patient’s access log. Support and admins get its logistics, without `reason`. ' +
          'To anyone else it does not exist (404 `telemedicine.consultation_not_found`).',
        params: ConsultationIdParams,
        response: { 200: ConsultationResponse, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const view = await consultations.getConsultation(
        principalOf(request),
        request.params.consultationId,
        originOf(request),
      );
      return view.audience === 'participant'
        ? toConsultationResponse(view.consultation, { reason: view.consultation.reason })
        : toConsultationResponse(view.consultation);
    },
  );
}
