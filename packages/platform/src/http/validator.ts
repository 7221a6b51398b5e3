import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';

/**
 * Validates with TypeBox's compiled checker. Bodies are checked exactly as
 * sent (a JSON API must not turn "12" into 12, nor drop unknown fields: they
 * are rejected by `additionalProperties: false`); path, query and headers are
 * strings on the wire, so they get defaults and type conversion first.
 */
export const typeBoxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const checker = Compile(schema);
  const convert = httpPart !== 'body';
  // Most requests are already valid as sent; converting first would cost an
  // uncompiled walk of the schema on every request. Schemas with defaults must
  // still get them, so they always take the slow path.
  const canSkipConversion = !convert || !JSON.stringify(schema).includes('"default"');
  return (value: unknown) => {
    if (canSkipConversion && checker.Check(value)) return { value };
    const candidate = convert ? Value.Convert(schema, Value.Default(schema, value)) : value;
    if (checker.Check(candidate)) return { value: candidate };
    return { error: [...checker.Errors(candidate)] as unknown as Error };
  };
};
