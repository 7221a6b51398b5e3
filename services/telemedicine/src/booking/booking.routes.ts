import { type KeelApp, problemResponses } from '@keel/platform/http';
import type { StoredResponse } from '@keel/platform/idempotency';
import type { Static } from 'typebox';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import { originOf, principalOf, toConsultationResponse } from '../consultations/consultation.routes.ts';
import { ConsultationIdParams, ConsultationResponse } from '../consultations/consultation.schemas.ts';
import { consultationLocation } from '../consultations/consultation.ts';
import {
  BookConsultationBody,
  BookingResponse,
  CancelConsultationBody,
  CancelConsultationResponse,
  RescheduleConsultationBody,
} from './booking.schemas.ts';
import type { Booking, BookingService } from './booking.service.ts';

const TAGS = ['telemedicine consultations'];
const SECURITY = [{ bearerAuth: [] }];

// The stored response lands in platform.idempotency_keys in plain text:
// it carries no clinical content (the reason is read back with GET).
function toBookingResponse(booking: Booking): Static<typeof BookingResponse> {
  const { consultation, payment } = booking;
  return {
    consultation: toConsultationResponse(consultation),
    payment: {
      id: payment.id,
      status: payment.status,
      client_secret: payment.clientSecret,
      amount_minor: payment.amountMinor,
      currency: payment.currency,
    },
    hold_expires_at: consultation.holdExpiresAt?.toISOString() ?? null,
  };
}

function booked(booking: Booking) {
  return {
    statusCode: 201 as const,
    headers: { location: consultationLocation(booking.consultation.id) },
    body: toBookingResponse(booking),
  } satisfies StoredResponse;
}

export function registerBookingRoutes(app: KeelApp, booking: BookingService): void {
  app.post(
    '/consultations',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.book, idempotency: { required: true } },
      schema: {
        operationId: 'bookConsultation',
        tags: TAGS,
        summary: 'Book a slot and start paying for it',
        security: SECURITY,
        description:
          'Holds the slot for the configured hold time (TELEMEDICINE_HOLD_MINUTES) and creates the ' +
          'consultation (PENDING_PAYMENT) and its payment intent. Confirm the payment with the gateway ' +
          'using `payment.client_secret`; the gateway’s webhook then makes the consultation SCHEDULED. ' +
          'When the gateway is slow the payment comes back as CREATING without a secret: poll ' +
          'GET /telemedicine/consultations/{id}/payment. An unpaid hold expires (EXPIRED) and frees the ' +
          'slot. Needs a patient profile and consent to treatment and telehealth ' +
          '(`telemedicine.consent_required`). A slot held or booked by someone else is 409 ' +
          '`telemedicine.slot_unavailable`; booking a slot you already hold returns that booking. ' +
          '`Idempotency-Key` is required.',
        headers: {
          type: 'object',
          properties: {
            'idempotency-key': { type: 'string', description: '1-255 printable ASCII characters' },
          },
        },
        body: BookConsultationBody,
        response: {
          201: { ...BookingResponse, description: 'The booking; Location names the consultation' },
          ...problemResponses(400, 401, 403, 404, 409, 413, 415, 422, 429),
        },
      },
    },
    async (request, reply) => {
      const claim = request.idempotency;
      const { body } = request;
      const result = await booking.bookConsultation(
        principalOf(request),
        {
          slotId: body.slot_id,
          reason: body.reason ?? null,
          specialty: body.specialty ?? null,
          consent: body.consent,
        },
        {
          origin: originOf(request),
          ...(claim === undefined ? {} : { idempotency: { claim, respond: booked } }),
        },
      );
      const response = booked(result);
      return reply.code(response.statusCode).headers(response.headers).send(response.body);
    },
  );

  app.post(
    '/consultations/:consultationId/cancel',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.cancelConsultations },
      // The body only carries an optional reason: a bare POST cancels too.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        operationId: 'cancelConsultation',
        tags: TAGS,
        summary: 'Cancel a consultation and refund it by policy',
        security: SECURITY,
        description:
          'Its patient or its doctor, or an admin, may cancel while it is PENDING_PAYMENT or SCHEDULED ' +
          '(otherwise 409 `telemedicine.invalid_transition`, also for the loser of concurrent cancels). ' +
          'The slot opens again. Refunds: the doctor’s or an admin’s cancellation refunds in full; the ' +
          'patient’s in full up to TELEMEDICINE_FULL_REFUND_HOURS before the start, later ' +
          'TELEMEDICINE_LATE_CANCEL_REFUND_PERCENT percent. The refund is issued in the background; an ' +
          'unpaid booking has its payment intent cancelled instead.',
        params: ConsultationIdParams,
        body: CancelConsultationBody,
        response: {
          200: CancelConsultationResponse,
          ...problemResponses(400, 401, 403, 404, 409, 415, 429),
        },
      },
    },
    async (request) => {
      const result = await booking.cancelConsultation(principalOf(request), request.params.consultationId, {
        reason: request.body.reason ?? null,
      });
      return { consultation: toConsultationResponse(result.consultation), refund_minor: result.refundMinor };
    },
  );

  app.post(
    '/consultations/:consultationId/reschedule',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.rescheduleConsultations },
      schema: {
        operationId: 'rescheduleConsultation',
        tags: TAGS,
        summary: 'Move a scheduled consultation to another slot of the same doctor',
        security: SECURITY,
        description:
          'Patients only, for their own SCHEDULED consultations (otherwise 409 ' +
          '`telemedicine.invalid_transition`). The new slot must be an OPEN future slot of the same ' +
          'doctor (`telemedicine.slot_unavailable`, 422 `telemedicine.reschedule_other_doctor`). The new ' +
          'slot is taken and the old one opened in one step; the payment carries over.',
        params: ConsultationIdParams,
        body: RescheduleConsultationBody,
        response: {
          200: ConsultationResponse,
          ...problemResponses(400, 401, 403, 404, 409, 415, 422, 429),
        },
      },
    },
    async (request) => {
      const moved = await booking.rescheduleConsultation(
        principalOf(request),
        request.params.consultationId,
        {
          slotId: request.body.slot_id,
        },
      );
      return toConsultationResponse(moved);
    },
  );
}
