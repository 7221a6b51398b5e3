import { Type } from 'typebox';

// No control characters: names and emails end up in logs, CSVs and emails.
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';

export const CreateUserBody = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 400,
      pattern: PRINTABLE,
      description: 'Trimmed; 1-200 characters',
    }),
    email: Type.String({ format: 'email', maxLength: 254, description: 'Unique, case-insensitive' }),
    phone: Type.String({
      minLength: 3,
      maxLength: 32,
      description: 'International format; stored as E.164',
      examples: ['+14155552671'],
    }),
  },
  { additionalProperties: false },
);

export const UserIdParams = Type.Object(
  { id: Type.String({ format: 'uuid', description: 'The user_id returned by createUser' }) },
  { additionalProperties: false },
);

export const UserResponse = Type.Object(
  {
    user_id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    email: Type.String(),
    phone: Type.String({ description: 'E.164' }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false, description: 'A user record' },
);
