import { AppError } from '@keel/platform/errors';
import { describe, expect, it } from 'vitest';
import { emailTaken, userNotFound } from './user.errors.ts';
import { type NewUserInput, normaliseNewUser, userLocation } from './user.ts';

function buildNewUserInput(overrides: Partial<NewUserInput> = {}): NewUserInput {
  return { name: 'Ada Lovelace', email: 'ada@example.com', phone: '+442071838750', ...overrides };
}

/** Runs `work`, expecting it to throw an AppError; returns it for assertions. */
function captureAppError(work: () => unknown): AppError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error('expected an AppError, but nothing was thrown');
}

describe('normaliseNewUser', () => {
  it('returns valid input unchanged', () => {
    expect(normaliseNewUser(buildNewUserInput())).toEqual(buildNewUserInput());
  });

  it.each([
    ['  Ada  ', 'Ada'],
    ['\tAda Lovelace\n', 'Ada Lovelace'],
    ['\u00a0Ada\u2003', 'Ada'],
    ['Ada   Byron  Lovelace', 'Ada   Byron  Lovelace'],
  ])('trims the name %j to %j and keeps inner spaces', (name, expected) => {
    expect(normaliseNewUser(buildNewUserInput({ name })).name).toBe(expected);
  });

  it('accepts a name of exactly 200 characters after trimming', () => {
    const name = 'n'.repeat(200);
    expect(normaliseNewUser(buildNewUserInput({ name: `   ${name}   ` })).name).toBe(name);
  });

  it.each([
    ['empty', ''],
    ['spaces only', '    '],
    ['other whitespace only', '\t\n\u00a0\u2003'],
    ['201 characters', 'n'.repeat(201)],
    ['201 characters inside spaces', `  ${'n'.repeat(201)}  `],
  ])('rejects a name that is %s with invalid users.name_invalid at /body/name', (_label, name) => {
    const error = captureAppError(() => normaliseNewUser(buildNewUserInput({ name })));
    expect(error.kind).toBe('invalid');
    expect(error.code).toBe('users.name_invalid');
    expect(error.errors).toEqual([expect.objectContaining({ pointer: '/body/name' })]);
  });

  it.each([
    ['+14155552671', '+14155552671'],
    ['+1 (415) 555-2671', '+14155552671'],
    ['+1.415.555.2671', '+14155552671'],
    ['  +44 20 7183 8750  ', '+442071838750'],
    ['+44 (0)20 7183 8750', '+442071838750'],
    ['+33 6 12 34 56 78', '+33612345678'],
    ['+81 3-1234-5678', '+81312345678'],
    ['+91 98765 43210', '+919876543210'],
  ])('normalises the phone %j to E.164 %s', (phone, expected) => {
    expect(normaliseNewUser(buildNewUserInput({ phone })).phone).toBe(expected);
  });

  it.each([
    ['without a country code', '4155552671'],
    ['in national UK format', '020 7183 8750'],
    ['too short for its country', '+1 415 555'],
    ['too long for its country', '+1 415 555 26710'],
    ['with an unassigned country code', '+999 1234567'],
    ['with an unassigned US area code', '+1 000 555 2671'],
    ['made of letters', 'not a phone'],
    ['empty', ''],
    ['only spaces', '   '],
    ['only a plus', '+'],
  ])('rejects a phone %s (%j) with invalid users.phone_invalid at /body/phone', (_label, phone) => {
    const error = captureAppError(() => normaliseNewUser(buildNewUserInput({ phone })));
    expect(error.kind).toBe('invalid');
    expect(error.code).toBe('users.phone_invalid');
    expect(error.errors).toEqual([expect.objectContaining({ pointer: '/body/phone' })]);
  });

  it('trims the email and keeps its case', () => {
    expect(normaliseNewUser(buildNewUserInput({ email: '  Ada@Example.COM ' })).email).toBe(
      'Ada@Example.COM',
    );
  });

  it('checks the name before the phone when both are invalid', () => {
    const error = captureAppError(() => normaliseNewUser(buildNewUserInput({ name: ' ', phone: 'nope' })));
    expect(error.code).toBe('users.name_invalid');
  });
});

describe('userLocation', () => {
  it('is the getUser path of the id', () => {
    expect(userLocation('0190f5b2-7c1e-7000-8000-000000000000')).toBe(
      '/user/0190f5b2-7c1e-7000-8000-000000000000',
    );
  });
});

describe('user errors', () => {
  it('userNotFound is a not_found users.not_found', () => {
    const error = userNotFound('some-id');
    expect(error.kind).toBe('not_found');
    expect(error.code).toBe('users.not_found');
  });

  it('emailTaken is a conflict users.email_taken carrying the existing user location as extension and header', () => {
    const error = emailTaken('existing-id');
    expect(error.kind).toBe('conflict');
    expect(error.code).toBe('users.email_taken');
    expect(error.extensions).toEqual({ location: '/user/existing-id' });
    expect(error.headers).toEqual({ location: '/user/existing-id' });
  });
});
