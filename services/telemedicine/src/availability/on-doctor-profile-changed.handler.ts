import { DoctorProfileChangedV1 } from '@keel/contracts';
import type { Transaction } from '@keel/platform/db';
import type { Subscription } from '@keel/platform/outbox';
import type { TelemedicineSchema } from '../database.ts';
import type { SlotMaterialiser } from './slot-materialiser.ts';

export const AVAILABILITY_SUBSCRIPTION_NAME = 'telemedicine.availability';

/**
 * A doctor who becomes VERIFIED may already have a schedule: their slots
 * appear now rather than at the next hourly roll. A suspension takes their
 * OPEN slots down the same way (the plan of a doctor who is not verified is
 * empty). Runs in the inbox transaction, so the effect happens once.
 */
export function createDoctorVerificationSubscription(deps: { materialiser: SlotMaterialiser }): Subscription {
  return {
    name: AVAILABILITY_SUBSCRIPTION_NAME,
    eventTypes: [DoctorProfileChangedV1.type],
    // Verified then suspended must not be applied the other way round.
    isOrderedPerAggregate: true,
    maxAttempts: 10,
    handler: async (event, trx) => {
      const { payload } = DoctorProfileChangedV1.parse(event);
      if (payload.change !== 'verification') return;
      await deps.materialiser.materialise(trx as Transaction<TelemedicineSchema>, payload.doctorId);
    },
  };
}
