import { type KeelApp, problemResponses } from '@keel/platform/http';
import type { Static } from 'typebox';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import { AnalyticsQuery, AnalyticsResponse } from './analytics.schemas.ts';
import type { AnalyticsService } from './analytics.service.ts';
import type { AnalyticsFigures, AnalyticsReport, DoctorFigures } from './analytics.ts';

type FiguresResponse = Static<typeof AnalyticsResponse>['totals'];

function toFiguresResponse(figures: AnalyticsFigures): FiguresResponse {
  return {
    booked: figures.booked,
    confirmed: figures.confirmed,
    completed: figures.completed,
    cancelled: figures.cancelled,
    no_shows: figures.noShows,
    expired: figures.expired,
    slots_offered: figures.slotsOffered,
    slots_booked: figures.slotsBooked,
    revenue_minor: figures.revenueMinor,
    refunds_minor: figures.refundsMinor,
    cancellation_rate: figures.cancellationRate,
    no_show_rate: figures.noShowRate,
    slot_utilisation: figures.slotUtilisation,
  };
}

function toDoctorResponse(doctor: DoctorFigures) {
  return { doctor_id: doctor.doctorId, full_name: doctor.fullName, ...toFiguresResponse(doctor) };
}

function toAnalyticsResponse(report: AnalyticsReport): Static<typeof AnalyticsResponse> {
  return {
    from: report.from,
    to: report.to,
    totals: toFiguresResponse(report.totals),
    per_day: report.perDay.map((day) => ({ day: day.day, ...toFiguresResponse(day) })),
    by_specialty: report.bySpecialty.map((group) => ({
      specialty: group.specialty,
      ...toFiguresResponse(group),
    })),
    by_doctor: report.byDoctor.map(toDoctorResponse),
    top_doctors: report.topDoctors.map(toDoctorResponse),
  };
}

export function registerAnalyticsRoutes(app: KeelApp, analytics: AnalyticsService): void {
  app.get(
    '/admin/analytics',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readAnalytics },
      schema: {
        operationId: 'getTelemedicineAnalytics',
        tags: ['telemedicine'],
        summary: 'Bookings, outcomes, revenue and slot utilisation per day, specialty and doctor',
        description:
          'Served from the daily rollup the `telemedicine.analytics` subscriber keeps from the service’s ' +
          'events (eventually consistent, usually within a second), never from the consultation tables. ' +
          'Consultation counts fall on the UTC day the consultation takes place; revenue and refunds on ' +
          'the UTC day the money moved. `from` and `to` are UTC days, both included (400 ' +
          '`telemedicine.analytics_invalid_range` for more than 366 days or from after to). Admins only.',
        security: [{ bearerAuth: [] }],
        querystring: AnalyticsQuery,
        response: {
          200: { ...AnalyticsResponse, description: 'The report' },
          ...problemResponses(400, 401, 403, 429),
        },
      },
    },
    async (request) => toAnalyticsResponse(await analytics.getTelemedicineAnalytics(request.query)),
  );
}
