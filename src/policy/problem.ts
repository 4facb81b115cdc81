/**
 * Every finding about an allowlist is a value with the place it came from, so
 * one run can report all of them at once and tools can sort or count them.
 */

export type Severity = 'error' | 'warning' | 'notice';

export interface SourcePosition {
  file: string;
  /** 1-based; 0 when the problem has no position (an unreadable path). */
  line: number;
  /** 1-based; 0 when the problem has no position. */
  col: number;
}

export interface Problem extends SourcePosition {
  severity: Severity;
  /** `Kind/namespace/name` of the resource, when the problem is inside one. */
  resource?: string;
  /** Field path inside the resource, `spec.ports[1].number`. */
  field?: string;
  message: string;
}

/** A field path as segments: object keys and array indexes. */
export type FieldPath = readonly (string | number)[];

/** `['spec', 'ports', 1, 'number']` -> `spec.ports[1].number`. */
export function formatFieldPath(path: FieldPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/**
 * `path:line:col: Kind/namespace/name: spec.ports[1].number: message`, the
 * form compilers use so editors can jump to it. Warnings and notices say so
 * after the position; errors do not.
 */
export function formatProblem(p: Problem): string {
  const parts: string[] = [p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file];
  if (p.severity !== 'error') parts.push(p.severity);
  if (p.resource !== undefined) parts.push(p.resource);
  if (p.field !== undefined && p.field !== '') parts.push(p.field);
  parts.push(p.message);
  return parts.join(': ');
}
