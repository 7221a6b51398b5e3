import { describe, expect, it } from 'vitest';
import { type CancellationFacts, decideRefund } from './refund-policy.ts';

const settings = { fullRefundHours: 24, lateCancelRefundPercent: 50 };
const startsAt = new Date('2030-03-10T09:00:00.000Z');

function facts(overrides: Partial<CancellationFacts> = {}): CancellationFacts {
  return {
    cancelledBy: 'patient',
    paidMinor: 5000,
    startsAt,
    cancelledAt: new Date(startsAt.getTime() - 48 * 3_600_000),
    ...overrides,
  };
}

describe('decideRefund', () => {
  it('refunds in full when the patient cancels well ahead', () => {
    expect(decideRefund(facts(), settings)).toEqual({ amountMinor: 5000, reason: 'patient_cancelled' });
  });

  it('refunds in full when the patient cancels exactly at the full-refund boundary', () => {
    const cancelledAt = new Date(startsAt.getTime() - 24 * 3_600_000);
    expect(decideRefund(facts({ cancelledAt }), settings)).toEqual({
      amountMinor: 5000,
      reason: 'patient_cancelled',
    });
  });

  it('refunds the late percentage, rounded down, when the patient cancels inside the window', () => {
    const cancelledAt = new Date(startsAt.getTime() - 24 * 3_600_000 + 1);
    expect(decideRefund(facts({ cancelledAt, paidMinor: 4999 }), settings)).toEqual({
      amountMinor: 2499,
      reason: 'patient_cancelled',
    });
  });

  it('refunds the late percentage when the patient cancels after the start', () => {
    const cancelledAt = new Date(startsAt.getTime() + 60_000);
    expect(decideRefund(facts({ cancelledAt }), settings)).toEqual({
      amountMinor: 2500,
      reason: 'patient_cancelled',
    });
  });

  it('refunds nothing when a late patient cancellation earns zero percent', () => {
    const cancelledAt = new Date(startsAt.getTime() - 3_600_000);
    expect(decideRefund(facts({ cancelledAt }), { ...settings, lateCancelRefundPercent: 0 })).toEqual({
      amountMinor: 0,
    });
  });

  it('refunds nothing when the rounded-down percentage is below one minor unit', () => {
    const cancelledAt = new Date(startsAt.getTime() - 3_600_000);
    expect(decideRefund(facts({ cancelledAt, paidMinor: 1 }), settings)).toEqual({ amountMinor: 0 });
  });

  it('refunds in full when the doctor cancels, however late', () => {
    const cancelledAt = new Date(startsAt.getTime() - 60_000);
    expect(decideRefund(facts({ cancelledBy: 'doctor', cancelledAt }), settings)).toEqual({
      amountMinor: 5000,
      reason: 'doctor_cancelled',
    });
  });

  it('refunds in full when an admin or the system cancels', () => {
    const cancelledAt = new Date(startsAt.getTime() - 60_000);
    for (const cancelledBy of ['admin', 'system'] as const) {
      expect(decideRefund(facts({ cancelledBy, cancelledAt }), settings)).toEqual({
        amountMinor: 5000,
        reason: 'admin',
      });
    }
  });

  it('refunds nothing when nothing was paid', () => {
    expect(decideRefund(facts({ paidMinor: 0, cancelledBy: 'doctor' }), settings)).toEqual({
      amountMinor: 0,
    });
  });
});
