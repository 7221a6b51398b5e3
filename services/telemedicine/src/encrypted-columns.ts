import type { EncryptedColumnSpec } from '@keel/platform/crypto';

// Every field-encrypted column of the service, with the AAD each value was
// written under (`<table>:<column>:<row id>`), for key rotation.

function column(table: string, name: string): EncryptedColumnSpec {
  return { table, idColumn: 'id', column: name, aad: (id: string) => `${table}:${name}:${id}` };
}

/** The AAD a value of `table.column` in row `id` is encrypted under. */
export function fieldAad(table: `telemedicine.${string}`, name: string, id: string): string {
  return `${table}:${name}:${id}`;
}

export const TELEMEDICINE_ENCRYPTED_COLUMNS: readonly EncryptedColumnSpec[] = [
  column('telemedicine.patients', 'full_name'),
  column('telemedicine.patients', 'date_of_birth'),
  column('telemedicine.patients', 'phone'),
  column('telemedicine.patients', 'emergency_contact'),
  column('telemedicine.patients', 'allergies'),
  column('telemedicine.consultations', 'reason'),
  column('telemedicine.consultations', 'clinical_notes'),
  column('telemedicine.prescriptions', 'content'),
  column('telemedicine.data_exports', 'archive'),
];
