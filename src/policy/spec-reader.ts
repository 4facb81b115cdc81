import { isDns1123Label } from './names.ts';
import type { FieldPath } from './problem.ts';
import type { ResourceContext } from './resource-context.ts';

/**
 * Typed reads of untyped YAML data. A value of the wrong type reads as
 * absent: the schema check has already reported it, so the meaning checks
 * can run on everything else and all problems come out in one pass.
 */

export type Fields = Record<string, unknown>;

export function asObject(value: unknown): Fields | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : undefined;
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function asInteger(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
}

export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** String entries of a list with their indexes; other entries are skipped. */
export function stringItems(value: unknown): [number, string][] {
  const out: [number, string][] = [];
  asArray(value).forEach((item, i) => {
    if (typeof item === 'string') out.push([i, item]);
  });
  return out;
}

export function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(asObject(value) ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

export function isPortNumber(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Reports a port outside 1-65535; returns the number when it is usable. */
export function readPort(ctx: ResourceContext, value: unknown, path: FieldPath): number | undefined {
  const n = asInteger(value);
  if (n === undefined) return undefined;
  if (!isPortNumber(n)) {
    ctx.error(path, 'must be between 1 and 65535');
    return undefined;
  }
  return n;
}

/**
 * `exportTo`: `.` (own namespace), `*` (all) or namespace names; absent means
 * `*`. Mixing `*` with anything else is refused, as Istio does.
 */
export function readExportTo(ctx: ResourceContext, value: unknown, path: FieldPath): string[] {
  if (value === undefined || value === null) return ['*'];
  const items = stringItems(value);
  if (Array.isArray(value) && value.length === 0) return ['*'];
  const out: string[] = [];
  for (const [i, item] of items) {
    if (item === '.' || item === '*' || isDns1123Label(item)) {
      if (!out.includes(item)) out.push(item);
    } else {
      ctx.error([...path, i], `"${item}" must be ".", "*" or a namespace name (DNS-1123 label)`);
    }
  }
  if (out.includes('*') && out.length > 1) {
    ctx.error(path, '"*" exports to every namespace and cannot be combined with other entries');
  }
  return out;
}

/** `workloadSelector.labels`; undefined when there is no selector. */
export function readWorkloadSelector(ctx: ResourceContext, spec: Fields, what: string): Record<string, string> | undefined {
  const selector = asObject(spec.workloadSelector);
  if (selector === undefined) return undefined;
  const labels = stringMap(selector.labels);
  if (Object.keys(labels).length === 0) {
    ctx.warn(['spec', 'workloadSelector'], `an empty workloadSelector selects every workload; ${what}`);
  }
  return labels;
}
