import { LineCounter, parseAllDocuments } from 'yaml';
import { isDns1123Label, isDns1123Subdomain } from './names.ts';
import { TOP_LEVEL, SPEC_FIELDS, findUnsupportedFields } from './fields.ts';
import { crossCheck } from './cross-checks.ts';
import { readDestinationRule } from './destination-rule.ts';
import type { FieldPath, Problem } from './problem.ts';
import { ResourceContext } from './resource-context.ts';
import {
  DEFAULT_NAMESPACE,
  DEFAULT_ROOT_NAMESPACE,
  type LoadOptions,
  type LoadedConfig,
  type PolicyResource,
  type ResourceMeta,
} from './resources.ts';
import { checkSchema, type PolicyKind } from './schema.ts';
import { readServiceEntry } from './service-entry.ts';
import { readSidecar } from './sidecar.ts';
import { asObject, asString, stringMap, type Fields } from './spec-reader.ts';
import { YamlLocator } from './yaml-locator.ts';

/**
 * From YAML text to validated resources. Works on text, not files, so that
 * files, tests and a future gRPC config source share one path. Never throws
 * on bad content: every problem becomes a Problem.
 */

export interface ConfigText {
  text: string;
  /** Shown in problems; a path for files, any label otherwise. */
  filename: string;
}

const GROUP = 'networking.istio.io';
const VERSIONS = new Set(['v1', 'v1beta1', 'v1alpha3']);
const KINDS = new Set<string>(['ServiceEntry', 'DestinationRule', 'Sidecar']);

/** One text (one file): its resources, checked against each other. */
export function parseConfigText(text: string, filename: string, options: LoadOptions = {}): LoadedConfig {
  return parseConfigTexts([{ text, filename }], options);
}

/** Several texts loaded as one allowlist; cross-resource checks span all of them. */
export function parseConfigTexts(sources: readonly ConfigText[], options: LoadOptions = {}, readProblems: readonly Problem[] = []): LoadedConfig {
  const defaultNamespace = options.defaultNamespace ?? DEFAULT_NAMESPACE;
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const problems: Problem[] = [...readProblems];
  const resources: PolicyResource[] = [];
  for (const source of sources) parseOne(source, defaultNamespace, problems, resources);
  const kept = crossCheck(resources, problems);
  const order = new Map(sources.map((s, i) => [s.filename, i]));
  const sorted = problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (order.get(a.p.file) ?? -1) - (order.get(b.p.file) ?? -1) || a.p.line - b.p.line || a.p.col - b.p.col || a.i - b.i)
    .map(({ p }) => p);
  return deepFreeze({
    files: sources.map((s) => s.filename),
    errors: sorted.filter((p) => p.severity === 'error'),
    warnings: sorted.filter((p) => p.severity === 'warning'),
    notices: sorted.filter((p) => p.severity === 'notice'),
    serviceEntries: kept.filter((r) => r.kind === 'ServiceEntry'),
    destinationRules: kept.filter((r) => r.kind === 'DestinationRule'),
    sidecars: kept.filter((r) => r.kind === 'Sidecar'),
    defaultNamespace,
    rootNamespace,
  });
}

function parseOne(source: ConfigText, defaultNamespace: string, problems: Problem[], out: PolicyResource[]): void {
  const lines = new LineCounter();
  const docs = parseAllDocuments(source.text, { lineCounter: lines, prettyErrors: false });
  if (!Array.isArray(docs)) return; // an empty stream: nothing to load
  for (const doc of docs) {
    const locator = new YamlLocator(source.filename, doc, lines);
    for (const warning of doc.warnings) problems.push(yamlProblem('warning', source.filename, lines, warning));
    if (doc.errors.length > 0) {
      for (const error of doc.errors) problems.push(yamlProblem('error', source.filename, lines, error));
      continue;
    }
    if (doc.contents === null) continue;
    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      problems.push({ severity: 'error', ...locator.locate([]), message: `invalid YAML: ${(err as Error).message}` });
      continue;
    }
    readDocument(data, locator, defaultNamespace, problems, out);
  }
}

function readDocument(data: unknown, locator: YamlLocator, defaultNamespace: string, problems: Problem[], out: PolicyResource[]): void {
  const object = asObject(data);
  if (object === undefined) {
    problems.push({ severity: 'error', ...locator.locate([]), message: 'a document must be a Kubernetes resource: a mapping with apiVersion and kind' });
    return;
  }
  if (object.apiVersion === 'v1' && object.kind === 'List') {
    const items = Array.isArray(object.items) ? object.items : [];
    items.forEach((item, i) => readResource(item, ['items', i], locator, defaultNamespace, problems, out));
    return;
  }
  readResource(object, [], locator, defaultNamespace, problems, out);
}

function readResource(data: unknown, base: FieldPath, locator: YamlLocator, defaultNamespace: string, problems: Problem[], out: PolicyResource[]): void {
  const ctx = new ResourceContext(locator, base, problems);
  const object = asObject(data);
  if (object === undefined) {
    ctx.error([], 'must be a Kubernetes resource: a mapping with apiVersion and kind');
    return;
  }
  const apiVersion = asString(object.apiVersion);
  const kind = asString(object.kind);
  const metadata = asObject(object.metadata) ?? {};
  const namespace = asString(metadata.namespace) ?? defaultNamespace;
  const name = asString(metadata.name);
  ctx.resource = `${kind ?? '<no kind>'}/${namespace}/${name ?? '<no name>'}`;
  if (apiVersion === undefined || kind === undefined) {
    if (apiVersion === undefined) ctx.error(['apiVersion'], 'required');
    if (kind === undefined) ctx.error(['kind'], 'required');
    return;
  }
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/', 2) : ['', apiVersion];
  if (group !== GROUP || !KINDS.has(kind)) {
    ctx.notice([], `skipped: egressd reads only ServiceEntry, DestinationRule and Sidecar of ${GROUP}, not ${kind} of ${apiVersion}`);
    return;
  }
  if (!VERSIONS.has(version ?? '')) {
    ctx.error(['apiVersion'], `"${apiVersion}" is not supported: use ${GROUP}/v1, v1beta1 or v1alpha3`);
    return;
  }
  const policyKind = kind as PolicyKind;
  for (const e of checkSchema(policyKind, object)) ctx.error(e.path, e.message);
  checkMetadata(ctx, metadata, name, namespace);
  for (const key of Object.keys(object)) if (!TOP_LEVEL.has(key)) ctx.error([key], `unknown field "${key}"`, 'key');
  for (const f of findUnsupportedFields(object.spec, SPEC_FIELDS[policyKind], ['spec'])) {
    const key = f.path[f.path.length - 1];
    if (f.kind === 'unknown') ctx.error(f.path, `unknown field "${String(key)}" (not part of ${kind})`, 'key');
    else ctx.warn(f.path, `not implemented by egressd; ignored${f.note === undefined ? '' : ` (${f.note})`}`, 'key');
  }
  if (object.spec === undefined && kind !== 'Sidecar') ctx.error(['spec'], 'required');
  const meta: ResourceMeta = {
    kind: policyKind,
    apiVersion,
    namespace,
    name: name ?? '',
    labels: stringMap(metadata.labels),
    id: ctx.resource,
    source: ctx.position([]),
  };
  const spec: Fields = asObject(object.spec) ?? {};
  const resource =
    policyKind === 'ServiceEntry' ? readServiceEntry(ctx, meta, spec) : policyKind === 'DestinationRule' ? readDestinationRule(ctx, meta, spec) : readSidecar(ctx, meta, spec);
  if (ctx.errorCount === 0) out.push(resource);
}

function checkMetadata(ctx: ResourceContext, metadata: Fields, name: string | undefined, namespace: string): void {
  if (metadata.name === undefined) ctx.error(['metadata', 'name'], 'required');
  else if (name !== undefined && !isDns1123Subdomain(name)) ctx.error(['metadata', 'name'], `"${name}" must be a DNS-1123 subdomain`);
  if (typeof metadata.namespace === 'string' && !isDns1123Label(namespace)) {
    ctx.error(['metadata', 'namespace'], `"${namespace}" must be a namespace name (DNS-1123 label)`);
  }
}

function yamlProblem(severity: 'error' | 'warning', file: string, lines: LineCounter, e: { pos: [number, number]; message: string }): Problem {
  const { line, col } = lines.linePos(e.pos[0]);
  const message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  return { severity, file, line, col, message: `${severity === 'error' ? 'invalid YAML' : 'YAML'}: ${message}` };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
