import { DestinationRule, ServiceEntry, Sidecar, type AjvError, type Validator } from './istio-validators.js';
import type { FieldPath } from './problem.ts';

/**
 * The structural check against the published Istio CRD schemas, compiled ahead of time
 * (istio-validators.js, generated from @kubernetes-models/istio by
 * scripts/generate-istio-validators.ts) so that no process pays for a schema compiler.
 * v1, v1beta1 and v1alpha3 share one spec, and the library has no v1 schemas, so every
 * version is checked against v1beta1's.
 */

export type PolicyKind = 'ServiceEntry' | 'DestinationRule' | 'Sidecar';

export interface SchemaError {
  path: FieldPath;
  message: string;
}

const VALIDATORS: Record<PolicyKind, Validator> = { ServiceEntry, DestinationRule, Sidecar };
const API_VERSION = 'networking.istio.io/v1beta1';

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
};

/** Schema violations of one resource, each with the field path it is about. */
export function checkSchema(kind: PolicyKind, data: Record<string, unknown>): SchemaError[] {
  const validate = VALIDATORS[kind];
  if (validate({ ...data, apiVersion: API_VERSION, kind })) return [];
  return toSchemaErrors(validate.errors ?? []);
}

function toSchemaErrors(errors: AjvError[]): SchemaError[] {
  const out: SchemaError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // `metadata` is "ObjectMeta or null": the null branch and the oneOf summary only repeat the real error.
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf' || (e.keyword === 'type' && e.params.type === 'null')) continue;
    const path = parsePointer(e.instancePath);
    let message = e.message ?? e.keyword;
    if (e.keyword === 'required') {
      path.push(String(e.params.missingProperty));
      message = 'required';
    } else if (e.keyword === 'enum' && Array.isArray(e.params.allowedValues)) {
      message = `must be one of ${e.params.allowedValues.join(', ')}`;
    } else if (e.keyword === 'type' && typeof e.params.type === 'string') {
      message = `must be ${TYPE_NAMES[e.params.type] ?? e.params.type}`;
    }
    const key = `${path.join('\0')}\0${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, message });
  }
  return out;
}

/** JSON pointer `/spec/ports/0/number` -> ['spec', 'ports', 0, 'number']. */
function parsePointer(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((seg) => (/^(0|[1-9]\d*)$/.test(seg) ? Number(seg) : seg));
}
