import { AppError } from '@keel/platform/errors';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

export type User = {
  id: string;
  name: string;
  email: string;
  /** E.164, e.g. +447911123456. */
  phone: string;
  createdAt: Date;
};

export type NewUserInput = { name: string; email: string; phone: string };

export type NormalisedUserInput = NewUserInput;

/**
 * The rules a stored user obeys beyond its schema: a trimmed, non-blank name
 * and a phone number that is valid for its country, stored as E.164.
 */
export function normaliseNewUser(input: NewUserInput): NormalisedUserInput {
  const name = input.name.trim();
  if (name.length === 0 || name.length > 200) {
    throw new AppError(
      'invalid',
      'users.name_invalid',
      'Name must be 1-200 characters after trimming spaces',
      {
        errors: [{ pointer: '/body/name', detail: 'must be 1-200 characters after trimming' }],
      },
    );
  }
  const phone = parsePhoneNumberFromString(input.phone.trim());
  if (phone === undefined || !phone.isValid()) {
    throw new AppError(
      'invalid',
      'users.phone_invalid',
      'Phone must be a valid number in international format, e.g. +14155552671',
      { errors: [{ pointer: '/body/phone', detail: 'must be a valid international phone number' }] },
    );
  }
  return { name, email: input.email.trim(), phone: phone.number };
}

export function userLocation(id: string): string {
  return `/user/${id}`;
}
