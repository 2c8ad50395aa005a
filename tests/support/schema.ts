// Validates display documents against contract/schema/mambalab.v1.schema.json (the contract
// with the lab extension), with ajv's JSON Schema 2020-12 validator.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Ajv2020 } from 'ajv/dist/2020.js';

const schemaPath = join(import.meta.dirname, '..', '..', 'contract', 'schema', 'mambalab.v1.schema.json');
/** The schema document itself. */
export const schema: object = JSON.parse(readFileSync(schemaPath, 'utf8'));
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);

/** The schema's complaints about doc, one per line; '' when it is valid. */
export function schemaErrors(doc: unknown): string {
  if (validate(doc)) return '';
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`).join('\n');
}
