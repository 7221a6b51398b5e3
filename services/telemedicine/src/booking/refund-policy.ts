import { assertNever } from '@keel/platform/errors';
import type { CancelledBy, RefundReason } from '../database.ts';

export type RefundPolicySettings = {
  /** A patient who cancels at least this long before the start gets everything back. */
  fullRefundHours: number;
  /** What a later patient cancellation refunds, in percent of what was paid. */
  lateCancelRefundPercent: number;
};

export type CancellationFacts = {
  cancelledBy: CancelledBy;
  /** What the patient paid and has not had back; 0 when no payment succeeded. */
  paidMinor: number;
  startsAt: Date;
  cancelledAt: Date;
};

/** What a cancellation gives back: nothing, or an amount under the reason the refund row is filed as. */
export type RefundDecision = { amountMinor: 0 } | { amountMinor: number; reason: RefundReason };

const HOUR_MS = 3_600_000;

/**
 * The refund a cancellation earns. The doctor's or the operator's
 * cancellation refunds in full (the patient did nothing wrong); the
 * patient's own refunds in full up to `fullRefundHours` before the start,
 * later only `lateCancelRefundPercent` percent, rounded down to whole minor
 * units. Nothing paid, nothing refunded (the payment intent is cancelled instead).
 */
export function decideRefund(facts: CancellationFacts, settings: RefundPolicySettings): RefundDecision {
  if (facts.paidMinor <= 0) return { amountMinor: 0 };
  const full = facts.paidMinor;
  switch (facts.cancelledBy) {
    case 'doctor':
      return { amountMinor: full, reason: 'doctor_cancelled' };
    case 'admin':
    case 'system':
      return { amountMinor: full, reason: 'admin' };
    case 'patient': {
      const noticeMs = facts.startsAt.getTime() - facts.cancelledAt.getTime();
      if (noticeMs >= settings.fullRefundHours * HOUR_MS) {
        return { amountMinor: full, reason: 'patient_cancelled' };
      }
      // Integer arithmetic: percent of minor units, floored, never a float rounding up a cent.
      const partial = Math.floor((full * settings.lateCancelRefundPercent) / 100);
      return partial > 0 ? { amountMinor: partial, reason: 'patient_cancelled' } : { amountMinor: 0 };
    }
    default:
      return assertNever(facts.cancelledBy);
  }
}
