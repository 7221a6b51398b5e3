import { type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import type { RequestOrigin } from '../compliance/clinical-access.ts';
import {
  ConsultationIdParams,
  PrescriptionBody,
  PrescriptionIdParams,
  PrescriptionListResponse,
  PrescriptionResponse,
  SigningKeysResponse,
  VerifyPrescriptionBody,
  VerifyPrescriptionResponse,
} from './prescription.schemas.ts';
import type { PrescriptionService, VerificationResult } from './prescription.service.ts';
import type { Prescription } from './prescription.ts';
import type { PrescriptionFonts } from './prescription-fonts.ts';
import { renderPrescriptionPdf } from './prescription-pdf.ts';

const TAGS = ['telemedicine'];
// Sent as a Buffer, which Fastify passes through unserialised; typed so the handler may send one.
const PdfBytes = Type.Unsafe<Buffer>({ type: 'string', format: 'binary' });
const SECURITY = [{ bearerAuth: [] }];

export function prescriptionLocation(id: string): string {
  return `/telemedicine/prescriptions/${id}`;
}

export function toPrescriptionResponse(prescription: Prescription): Static<typeof PrescriptionResponse> {
  const { document } = prescription;
  return {
    id: prescription.id,
    consultation_id: prescription.consultationId,
    patient_id: prescription.patientId,
    version: prescription.version,
    status: prescription.status,
    supersedes_id: prescription.supersedesId,
    superseded_by: prescription.supersededById,
    issued_at: prescription.issuedAt.toISOString(),
    superseded_at: prescription.supersededAt?.toISOString() ?? null,
    doctor: document.doctor,
    diagnosis: document.diagnosis,
    advice: document.advice,
    items: document.items,
    document_digest: prescription.documentDigest,
    signature: prescription.signature,
    kid: prescription.signingKeyId,
  };
}

function toVerificationResponse(result: VerificationResult): Static<typeof VerifyPrescriptionResponse> {
  if (!result.isValid) return { valid: false };
  return {
    valid: true,
    issuer: { full_name: result.issuer.fullName, registration_number: result.issuer.registrationNumber },
    issued_at: result.issuedAt.toISOString(),
    status: result.isCurrent ? 'current' : 'superseded',
  };
}

// Every route below but the public two declares a permission, so the access hook has set the principal.
function principalOf(request: FastifyRequest): Principal {
  const { principal } = request;
  if (principal === undefined) throw new Error('prescriptions route reached without a principal');
  return principal;
}

function originOf(request: FastifyRequest): RequestOrigin {
  const userAgent = request.headers['user-agent'];
  return { requestId: request.id, ip: request.ip, ...(userAgent === undefined ? {} : { userAgent }) };
}

/** 201 with the new version and where it lives: an issue and a correction answer alike. */
function sendIssued(reply: FastifyReply, prescription: Parameters<typeof toPrescriptionResponse>[0]) {
  return reply
    .code(201)
    .header('location', prescriptionLocation(prescription.id))
    .send(toPrescriptionResponse(prescription));
}

export function registerPrescriptionRoutes(
  app: KeelApp,
  prescriptions: PrescriptionService,
  pdfFonts: PrescriptionFonts,
): void {
  app.post(
    '/consultations/:consultationId/prescriptions',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.prescribe },
      schema: {
        operationId: 'issuePrescription',
        tags: TAGS,
        security: SECURITY,
        summary: 'Issue the prescription of a consultation',
        description:
          'By the consultation’s doctor, while it is IN_PROGRESS or COMPLETED (else 409 ' +
          '`telemedicine.prescription_not_allowed`). Signed with Ed25519 over the canonical document ' +
          'and stored encrypted; immutable from then on. One per consultation (a second gets 409 ' +
          '`telemedicine.prescription_already_issued`): change it with a correction.',
        params: ConsultationIdParams,
        body: PrescriptionBody,
        response: {
          201: PrescriptionResponse,
          ...problemResponses(400, 401, 403, 404, 409, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const prescription = await prescriptions.issuePrescription(
        principalOf(request),
        request.params.consultationId,
        request.body,
        originOf(request),
      );
      return sendIssued(reply, prescription);
    },
  );

  app.post(
    '/prescriptions/:prescriptionId/corrections',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.prescribe },
      schema: {
        operationId: 'correctPrescription',
        tags: TAGS,
        security: SECURITY,
        summary: 'Correct a prescription',
        description:
          'By its doctor: issues version + 1 naming this one in `supersedes_id`, and marks this one ' +
          'SUPERSEDED, in one transaction. Only the current version can be corrected, once: otherwise 409 ' +
          '`telemedicine.prescription_superseded` (of concurrent corrections exactly one succeeds).',
        params: PrescriptionIdParams,
        body: PrescriptionBody,
        response: {
          201: PrescriptionResponse,
          ...problemResponses(400, 401, 403, 404, 409, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const prescription = await prescriptions.correctPrescription(
        principalOf(request),
        request.params.prescriptionId,
        request.body,
        originOf(request),
      );
      return sendIssued(reply, prescription);
    },
  );

  app.get(
    '/consultations/:consultationId/prescriptions',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readPrescriptions },
      schema: {
        operationId: 'listConsultationPrescriptions',
        tags: TAGS,
        security: SECURITY,
        summary: 'List the prescriptions of a consultation',
        description:
          'Every version, oldest first, for the consultation’s patient and doctor only (anyone else: ' +
          '404). Each read is recorded in the patient’s access log.',
        params: ConsultationIdParams,
        response: { 200: PrescriptionListResponse, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const list = await prescriptions.listConsultationPrescriptions(
        principalOf(request),
        request.params.consultationId,
        originOf(request),
      );
      return reply.header('cache-control', 'no-store').send({ items: list.map(toPrescriptionResponse) });
    },
  );

  app.get(
    '/prescriptions/signing-keys',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'listPrescriptionSigningKeys',
        tags: TAGS,
        summary: 'The public keys prescriptions are signed with',
        description:
          'A JWK set, the current key first and then keys retired by rotation: verify a prescription ' +
          'offline with the key whose `kid` it names, over the canonical JSON of its document.',
        response: { 200: SigningKeysResponse, ...problemResponses(429) },
      },
    },
    async () => ({ keys: prescriptions.listSigningKeys() }),
  );

  app.post(
    '/prescriptions/verify',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'verifyPrescription',
        tags: TAGS,
        summary: 'Verify a prescription (for pharmacies)',
        description:
          'Valid when a prescription with this id exists, its signature is the one given, and the ' +
          'signature still verifies over its stored document. Answers issuer, issue date and whether it ' +
          'is still current only when valid; an unknown id and a wrong signature both answer ' +
          '`{ "valid": false }`. Nothing about the patient or the content is returned.',
        body: VerifyPrescriptionBody,
        response: { 200: VerifyPrescriptionResponse, ...problemResponses(400, 413, 415, 429) },
      },
    },
    async (request, reply) => {
      const result = await prescriptions.verifyPrescription(
        request.body.prescription_id,
        request.body.signature,
      );
      return reply.header('cache-control', 'no-store').send(toVerificationResponse(result));
    },
  );

  app.get(
    '/prescriptions/:prescriptionId',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readPrescriptions },
      schema: {
        operationId: 'getPrescription',
        tags: TAGS,
        security: SECURITY,
        summary: 'Fetch a prescription',
        description:
          'For its patient and its doctor only (anyone else: 404), with its signature, key id and ' +
          'digest. The read is recorded in the patient’s access log.',
        params: PrescriptionIdParams,
        response: { 200: PrescriptionResponse, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const prescription = await prescriptions.getPrescription(
        principalOf(request),
        request.params.prescriptionId,
        originOf(request),
      );
      return reply.header('cache-control', 'no-store').send(toPrescriptionResponse(prescription));
    },
  );

  app.get(
    '/prescriptions/:prescriptionId/pdf',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readPrescriptions },
      schema: {
        operationId: 'getPrescriptionPdf',
        tags: TAGS,
        security: SECURITY,
        summary: 'The printable prescription (PDF)',
        description:
          'For its patient and its doctor only (anyone else: 404): doctor and registration number, ' +
          'patient, date, diagnosis, medicines, advice, and the verification block (id, key id, ' +
          'signature) a pharmacy checks. The read is recorded in the patient’s access log.',
        params: PrescriptionIdParams,
        response: {
          200: {
            description: 'The prescription as a PDF',
            content: { 'application/pdf': { schema: PdfBytes } },
          },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const printable = await prescriptions.getPrintablePrescription(
        principalOf(request),
        request.params.prescriptionId,
        originOf(request),
      );
      const pdf = await renderPrescriptionPdf(printable, pdfFonts);
      return reply
        .type('application/pdf')
        .headers({
          'content-disposition': `attachment; filename="prescription-${printable.prescription.id}.pdf"`,
          'cache-control': 'no-store',
        })
        .send(pdf);
    },
  );
}
