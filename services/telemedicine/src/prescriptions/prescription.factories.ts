import type { PrescriptionItem } from './prescription.ts';

/** Test data: a complete prescription line, overridable field by field. */
export function buildPrescriptionItem(overrides: Partial<PrescriptionItem> = {}): PrescriptionItem {
  return {
    medicine: 'Amoxicillin',
    strength: '500 mg',
    dosage: '1 capsule',
    frequency: 'three times a day',
    duration: '7 days',
    instructions: 'after meals',
    ...overrides,
  };
}
