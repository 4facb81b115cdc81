import { formatFieldPath, type FieldPath, type Problem, type Severity, type SourcePosition } from './problem.ts';
import type { YamlLocator } from './yaml-locator.ts';

/**
 * Collects the problems of one resource, each placed at its field. Paths are
 * relative to the resource; `base` is where the resource sits in its
 * document (`items[3]` inside a List).
 */
export class ResourceContext {
  readonly #locator: YamlLocator;
  readonly #base: FieldPath;
  readonly #sink: Problem[];
  resource: string | undefined;
  errorCount = 0;

  constructor(locator: YamlLocator, base: FieldPath, sink: Problem[], resource?: string) {
    this.#locator = locator;
    this.#base = base;
    this.#sink = sink;
    this.resource = resource;
  }

  position(path: FieldPath, at: 'value' | 'key' = 'value'): SourcePosition {
    return this.#locator.locate([...this.#base, ...path], at);
  }

  error(path: FieldPath, message: string, at: 'value' | 'key' = 'value'): void {
    this.errorCount++;
    this.#add('error', path, message, at);
  }

  warn(path: FieldPath, message: string, at: 'value' | 'key' = 'value'): void {
    this.#add('warning', path, message, at);
  }

  notice(path: FieldPath, message: string): void {
    this.#add('notice', path, message, 'value');
  }

  #add(severity: Severity, path: FieldPath, message: string, at: 'value' | 'key'): void {
    const problem: Problem = { severity, ...this.position(path, at), message };
    if (this.resource !== undefined) problem.resource = this.resource;
    const field = formatFieldPath(path);
    if (field !== '') problem.field = field;
    this.#sink.push(problem);
  }
}
