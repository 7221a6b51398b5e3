import { formatVersionEtag, type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import type { RequestOrigin } from '../compliance/clinical-access.ts';
import {
  ClinicalNotesResponse,
  ConsultationIdParams,
  ConsultationLogisticsResponse,
  IfMatchHeaders,
  WriteNotesBody,
} from './clinical.schemas.ts';
import type { ClinicalService } from './clinical.service.ts';
import type { ClinicalNotes, ConsultationRecord, LifecycleAction } from './clinical.ts';

const TAGS = ['telemedicine'];
const SECURITY = [{ bearerAuth: [] }];

function toLogisticsResponse(consultation: ConsultationRecord): Static<typeof ConsultationLogisticsResponse> {
  return {
    id: consultation.id,
    status: consultation.status,
    version: consultation.version,
    started_at: consultation.startedAt?.toISOString() ?? null,
    completed_at: consultation.completedAt?.toISOString() ?? null,
  };
}

function toNotesResponse(notes: ClinicalNotes): Static<typeof ClinicalNotesResponse> {
  return {
    consultation_id: notes.consultationId,
    notes: notes.notes,
    version: notes.version,
    updated_at: notes.updatedAt.toISOString(),
  };
}

// Every route below declares a permission, so the access hook has set the principal.
function principalOf(request: FastifyRequest): Principal {
  const { principal } = request;
  if (principal === undefined) throw new Error('clinical route reached without a principal');
  return principal;
}

function ifMatchOf(request: FastifyRequest): string | undefined {
  const value = request.headers['if-match'];
  return Array.isArray(value) ? value.join(', ') : value;
}

function originOf(request: FastifyRequest): RequestOrigin {
  const userAgent = request.headers['user-agent'];
  return { requestId: request.id, ip: request.ip, ...(userAgent === undefined ? {} : { userAgent }) };
}

const LIFECYCLE_ROUTES: readonly {
  action: LifecycleAction;
  path: string;
  operationId: string;
  summary: string;
  description: string;
}[] = [
  {
    action: 'start',
    path: '/consultations/:consultationId/start',
    operationId: 'startConsultation',
    summary: 'Start a consultation',
    description:
      'SCHEDULED → IN_PROGRESS, by the consultation’s doctor, from 15 minutes before its start ' +
      '(earlier: 409 `telemedicine.too_early_to_start`).',
  },
  {
    action: 'complete',
    path: '/consultations/:consultationId/complete',
    operationId: 'completeConsultation',
    summary: 'Complete a consultation',
    description: 'IN_PROGRESS → COMPLETED, by the consultation’s doctor.',
  },
  {
    action: 'no_show',
    path: '/consultations/:consultationId/no-show',
    operationId: 'markConsultationNoShow',
    summary: 'Mark the patient as absent',
    description:
      'SCHEDULED → NO_SHOW, by the consultation’s doctor, from 10 minutes after its start ' +
      '(earlier: 409 `telemedicine.too_early_for_no_show`).',
  },
];

export function registerClinicalRoutes(app: KeelApp, clinical: ClinicalService): void {
  for (const route of LIFECYCLE_ROUTES) {
    app.post(
      route.path,
      {
        config: { access: TELEMEDICINE_PERMISSIONS.conductConsultations },
        schema: {
          operationId: route.operationId,
          tags: TAGS,
          security: SECURITY,
          summary: route.summary,
          description:
            `${route.description} \`If-Match\` with the consultation’s ETag is required ` +
            '(`telemedicine.precondition_required`, 400); a stale one gets 412 ' +
            '`telemedicine.version_mismatch`; a move the lifecycle does not allow gets 409 ' +
            '`telemedicine.invalid_transition`. Anyone but its doctor gets 404.',
          params: ConsultationIdParams,
          headers: IfMatchHeaders,
          response: {
            200: ConsultationLogisticsResponse,
            ...problemResponses(400, 401, 403, 404, 409, 412, 429),
          },
        },
      },
      async (request, reply) => {
        const consultation = await clinical.changeStatus(
          principalOf(request),
          request.params.consultationId,
          route.action,
          ifMatchOf(request),
        );
        return reply
          .header('etag', formatVersionEtag(consultation.version))
          .send(toLogisticsResponse(consultation));
      },
    );
  }

  app.put(
    '/consultations/:consultationId/notes',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.writeClinicalNotes },
      schema: {
        operationId: 'writeClinicalNotes',
        tags: TAGS,
        security: SECURITY,
        summary: 'Write the clinical notes of a consultation',
        description:
          'Replaces the notes (stored encrypted) while the consultation is IN_PROGRESS or COMPLETED ' +
          '(else 409 `telemedicine.notes_not_writable`), by its doctor only. Bumps the consultation’s ' +
          'version; `If-Match` is optional, a stale one gets 412. Every write is recorded in the ' +
          'patient’s access log.',
        params: ConsultationIdParams,
        headers: IfMatchHeaders,
        body: WriteNotesBody,
        response: {
          200: ClinicalNotesResponse,
          ...problemResponses(400, 401, 403, 404, 409, 412, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const notes = await clinical.writeNotes(principalOf(request), request.params.consultationId, {
        notes: request.body.notes,
        ifMatch: ifMatchOf(request),
        origin: originOf(request),
      });
      return reply.header('etag', formatVersionEtag(notes.version)).send(toNotesResponse(notes));
    },
  );

  app.get(
    '/consultations/:consultationId/notes',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readConsultations },
      schema: {
        operationId: 'getClinicalNotes',
        tags: TAGS,
        security: SECURITY,
        summary: 'Read the clinical notes of a consultation',
        description:
          'For the consultation’s patient and doctor only; to anyone else (support and admins ' +
          'included) it does not exist (404). Every read is recorded in the patient’s access log.',
        params: ConsultationIdParams,
        response: { 200: ClinicalNotesResponse, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const notes = await clinical.readNotes(
        principalOf(request),
        request.params.consultationId,
        originOf(request),
      );
      return reply
        .header('etag', formatVersionEtag(notes.version))
        .header('cache-control', 'no-store')
        .send(toNotesResponse(notes));
    },
  );
}
