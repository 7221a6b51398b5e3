import { type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import type { RequestOrigin } from './clinical-access.ts';
import {
  AccessLogPageResponse,
  AccessLogQuery,
  ConsentPageResponse,
  ConsentsQuery,
  DataExportArchiveResponse,
  DataExportIdParams,
  DataExportResponse,
} from './compliance.schemas.ts';
import type { ComplianceService, DataExportView } from './compliance.service.ts';
import type { Consent } from './compliance.ts';
import { toAccessLogJson } from './data-export-archive.ts';

const TAGS = ['telemedicine'];
const SECURITY = [{ bearerAuth: [] }];

export function dataExportLocation(id: string): string {
  return `/telemedicine/me/data-exports/${id}`;
}

function toDataExportResponse(view: DataExportView): Static<typeof DataExportResponse> {
  const { dataExport, state } = view;
  return {
    id: dataExport.id,
    status: state,
    requested_at: dataExport.requestedAt.toISOString(),
    completed_at: dataExport.completedAt?.toISOString() ?? null,
    expires_at: dataExport.expiresAt?.toISOString() ?? null,
    archive_url: state === 'READY' ? `${dataExportLocation(dataExport.id)}/archive` : null,
  };
}

function toConsentResponse(consent: Consent) {
  return {
    id: consent.id,
    consultation_id: consent.consultationId,
    kind: consent.kind,
    version: consent.version,
    given_at: consent.givenAt.toISOString(),
  };
}

// Every route below declares a permission, so the access hook has set the principal.
function principalOf(request: FastifyRequest): Principal {
  const { principal } = request;
  if (principal === undefined) throw new Error('telemedicine route reached without a principal');
  return principal;
}

function originOf(request: FastifyRequest): RequestOrigin {
  const userAgent = request.headers['user-agent'];
  return { requestId: request.id, ip: request.ip, ...(userAgent === undefined ? {} : { userAgent }) };
}

export function registerComplianceRoutes(app: KeelApp, compliance: ComplianceService): void {
  app.get(
    '/me/access-log',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readOwnAccessLog },
      schema: {
        operationId: 'listMyAccessLog',
        tags: TAGS,
        summary: 'Who read or changed my record, newest first',
        description:
          'Every read and write of your clinical record (profile, consultations, notes, prescriptions, ' +
          'exports), with who did it, in which role and for what purpose. Only ever your own record. ' +
          'Keyset-paginated: pass `next_cursor` back as `cursor` with the same filters.',
        security: SECURITY,
        querystring: AccessLogQuery,
        response: { 200: AccessLogPageResponse, ...problemResponses(400, 401, 403, 429) },
      },
    },
    async (request) => {
      const { query } = request;
      const page = await compliance.readOwnAccessLog(principalOf(request), {
        limit: query.limit,
        ...(query.from === undefined ? {} : { from: new Date(query.from) }),
        ...(query.to === undefined ? {} : { to: new Date(query.to) }),
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      });
      return { items: page.entries.map(toAccessLogJson), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/me/data-exports',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.exportOwnData },
      schema: {
        operationId: 'exportMyData',
        tags: TAGS,
        summary: 'Request an archive of everything held about me',
        description:
          'Starts preparing a JSON archive of your profile, consultations (with reasons and notes), ' +
          'prescriptions, payments and refunds, reviews, consents and access log; you are notified when ' +
          'it is READY. One export is prepared at a time: while one is PENDING, or READY and ' +
          'requested less than a minute ago, a new request returns it. Needs a patient profile (422 `telemedicine.patient_profile_required`).',
        security: SECURITY,
        response: {
          202: { ...DataExportResponse, description: 'The pending export; Location is its status' },
          ...problemResponses(401, 403, 422, 429),
        },
      },
    },
    async (request, reply) => {
      const view = await compliance.exportOwnData(principalOf(request));
      return reply
        .code(202)
        .header('location', dataExportLocation(view.dataExport.id))
        .send(toDataExportResponse(view));
    },
  );

  app.get(
    '/me/data-exports/:exportId',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.exportOwnData },
      schema: {
        operationId: 'getMyDataExport',
        tags: TAGS,
        summary: 'Where my data export stands',
        description:
          'PENDING, READY (with `archive_url`), FAILED or EXPIRED. Another patient’s export is 404.',
        security: SECURITY,
        params: DataExportIdParams,
        response: { 200: DataExportResponse, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) =>
      toDataExportResponse(await compliance.getOwnDataExport(principalOf(request), request.params.exportId)),
  );

  app.get(
    '/me/data-exports/:exportId/archive',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.exportOwnData },
      schema: {
        operationId: 'downloadMyDataExport',
        tags: TAGS,
        summary: 'Download my data export',
        description:
          'The archive as a JSON attachment. 409 `telemedicine.export_not_ready` while PENDING, 409 ' +
          '`telemedicine.export_failed` if it failed, 404 `telemedicine.export_expired` once expired. ' +
          'The download is recorded in your access log.',
        security: SECURITY,
        params: DataExportIdParams,
        response: {
          200: { ...DataExportArchiveResponse, description: 'The archive' },
          ...problemResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const { dataExport, archive } = await compliance.downloadOwnDataExport(
        principalOf(request),
        request.params.exportId,
        originOf(request),
      );
      // Sent as stored: a Buffer skips the serialiser (the archive is already JSON), so the
      // response schema only documents it; `never` tells the type provider as much.
      const body = Buffer.from(archive, 'utf8') as never;
      return reply
        .type('application/json; charset=utf-8')
        .header('content-disposition', `attachment; filename="telemedicine-export-${dataExport.id}.json"`)
        .header('cache-control', 'no-store')
        .send(body);
    },
  );

  app.get(
    '/me/consents',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readOwnAccessLog },
      schema: {
        operationId: 'listMyConsents',
        tags: TAGS,
        summary: 'The consents I gave, newest first',
        description:
          'The treatment and telehealth consents recorded with your bookings (kept if a booking is ' +
          'cancelled), with the version of the text you agreed to. Keyset-paginated.',
        security: SECURITY,
        querystring: ConsentsQuery,
        response: { 200: ConsentPageResponse, ...problemResponses(400, 401, 403, 429) },
      },
    },
    async (request) => {
      const { query } = request;
      const page = await compliance.listOwnConsents(principalOf(request), {
        limit: query.limit,
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      });
      return { items: page.consents.map(toConsentResponse), next_cursor: page.nextCursor };
    },
  );
}
