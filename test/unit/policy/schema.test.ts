/**
 * The generated schema validators (src/policy/istio-validators.js) against the library they
 * are generated from: the file is what the generator writes today, and on every resource of
 * the fixtures and examples, and on thousands of variants with one field of the wrong type or
 * value, both report the same errors.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { DestinationRule as LibraryDestinationRule } from '@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule';
import { ServiceEntry as LibraryServiceEntry } from '@kubernetes-models/istio/networking.istio.io/v1beta1/ServiceEntry';
import { Sidecar as LibrarySidecar } from '@kubernetes-models/istio/networking.istio.io/v1beta1/Sidecar';
import { generateValidators, VALIDATORS_FILE } from '../../../scripts/generate-istio-validators.ts';
import { checkSchema, type PolicyKind } from '../../../src/policy/schema.ts';
import * as generated from '../../../src/policy/istio-validators.js';
import type { AjvError } from '../../../src/policy/istio-validators.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LIBRARY = { ServiceEntry: LibraryServiceEntry, DestinationRule: LibraryDestinationRule, Sidecar: LibrarySidecar } as const;
const KINDS = new Set<string>(Object.keys(LIBRARY));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Resource = { kind: PolicyKind } & Record<string, Json>;

/** Errors as compared: what an error says, without the order Ajv found them in. */
function comparable(errors: readonly AjvError[]): string[] {
  return errors
    // The library drops the "null" branch of nullable references; the generated code keeps it and schema.ts drops it.
    .filter((e) => e.keyword !== 'oneOf' && !(e.keyword === 'type' && e.params.type === 'null'))
    .map((e) => JSON.stringify([e.instancePath, e.keyword, e.params, e.message]))
    .sort();
}

function libraryErrors(r: Resource): string[] {
  const Model = LIBRARY[r.kind];
  try {
    new Model({ ...r, apiVersion: Model.apiVersion } as ConstructorParameters<typeof Model>[0]).validate();
    return [];
  } catch (err) {
    return comparable((err as { errors: AjvError[] }).errors);
  }
}

function generatedErrors(r: Resource): string[] {
  const validate = generated[r.kind];
  return validate({ ...r, apiVersion: 'networking.istio.io/v1beta1' }) ? [] : comparable(validate.errors ?? []);
}

function yamlFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(ROOT, dir, f));
}

/** Every ServiceEntry, DestinationRule and Sidecar of the fixtures and examples that parses as YAML. */
const resources: Resource[] = [...yamlFiles('deploy'), ...yamlFiles('test/fixtures')].flatMap((file) =>
  parseAllDocuments(readFileSync(file, 'utf8'))
    .filter((d) => d.errors.length === 0)
    .map((d) => d.toJS() as unknown)
    .flatMap((data) => ((data as { kind?: string } | null)?.kind === 'List' ? ((data as { items: unknown[] }).items ?? []) : [data]))
    .filter((data): data is Resource => typeof data === 'object' && data !== null && KINDS.has((data as { kind?: string }).kind ?? '')),
);

const WRONG: readonly Json[] = [7, -1, 2 ** 40, 1.5, 'BOGUS', '', true, null, [], ['x'], {}, { bogus: 1 }];

/** The resource with the value at `path` replaced. */
function replaced(value: Json, path: readonly (string | number)[], by: Json): Json {
  if (path.length === 0) return by;
  const [head, ...rest] = path;
  if (Array.isArray(value)) return value.map((v, i) => (i === head ? replaced(v, rest, by) : v));
  if (value !== null && typeof value === 'object') return { ...value, [head!]: replaced(value[head as string]!, rest, by) };
  return value;
}

function paths(value: Json, at: (string | number)[] = []): (string | number)[][] {
  const children = Array.isArray(value) ? value.map((v, i) => paths(v, [...at, i])) : value !== null && typeof value === 'object' ? Object.entries(value).map(([k, v]) => paths(v, [...at, k])) : [];
  return [at, ...children.flat()];
}

test('the generated file is what the generator writes from the installed library', async (t) => {
  t.is(readFileSync(VALIDATORS_FILE, 'utf8'), await generateValidators(), 'run: node --import tsx scripts/generate-istio-validators.ts');
});

test('fixtures and examples: the generated validators and the library report the same errors', (t) => {
  t.true(resources.length >= 20, `only ${resources.length} resources found`);
  for (const r of resources) t.deepEqual(generatedErrors(r), libraryErrors(r), JSON.stringify(r));
});

test('every field of every resource set to each wrong type or value: the same errors from both', (t) => {
  let variants = 0;
  let invalid = 0;
  for (const r of resources) {
    for (const path of paths(r as unknown as Json).filter((p) => p.length > 0 && p[0] !== 'kind')) {
      for (const wrong of WRONG) {
        const variant = replaced(r as unknown as Json, path, wrong) as Resource;
        const expected = libraryErrors(variant);
        t.deepEqual(generatedErrors(variant), expected, `${path.join('.')} = ${JSON.stringify(wrong)}`);
        variants++;
        if (expected.length > 0) invalid++;
      }
    }
  }
  t.log(`${variants} variants, ${invalid} with errors`);
  t.true(invalid > 1000, 'the variants exercise the schemas');
});

test('checkSchema words the errors for people, with the field path', (t) => {
  t.deepEqual(checkSchema('ServiceEntry', { metadata: { name: 'x' }, spec: { hosts: 'a.example', ports: [{ number: '443', name: 'tls', protocol: 'TLS' }], resolution: 'MAGIC' } }), [
    { path: ['spec', 'hosts'], message: 'must be a list' },
    { path: ['spec', 'ports', 0, 'number'], message: 'must be an integer' },
    { path: ['spec', 'resolution'], message: 'must be one of NONE, STATIC, DNS, DNS_ROUND_ROBIN' },
  ]);
  t.deepEqual(checkSchema('Sidecar', { metadata: { name: 'x' }, spec: {} }), []);
});
