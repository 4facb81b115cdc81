/** Types of the generated istio-validators.js (scripts/generate-istio-validators.ts). */

/** An Ajv error, as far as src/policy/schema.ts reads it. */
export interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** An Ajv validation function: true when valid, else false with `errors` set (until its next call). */
export interface Validator {
  (data: unknown): boolean;
  errors?: AjvError[] | null;
}

export const ServiceEntry: Validator;
export const DestinationRule: Validator;
export const Sidecar: Validator;
