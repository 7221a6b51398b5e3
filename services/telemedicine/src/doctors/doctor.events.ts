import { DoctorProfileChangedV1 } from '@keel/contracts';
import type { Transaction } from '@keel/platform/db';
import { emitEvent } from '@keel/platform/outbox';
import type { DoctorStatus, TelemedicineSchema } from '../database.ts';

export type DoctorChange = 'profile' | 'verification' | 'rating';

/**
 * Announces a change to a doctor's public picture (search caches and
 * analytics listen), in the transaction of the change itself.
 */
export async function emitDoctorProfileChanged(
  trx: Transaction<TelemedicineSchema>,
  doctor: { id: string; status: DoctorStatus },
  change: DoctorChange,
  occurredAt: Date,
): Promise<void> {
  await emitEvent(
    trx,
    {
      type: DoctorProfileChangedV1.type,
      aggregateType: 'doctor',
      aggregateId: doctor.id,
      occurredAt,
      payload: { doctorId: doctor.id, status: doctor.status, change },
    },
    { definition: DoctorProfileChangedV1 },
  );
}
