import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { FieldPath, SourcePosition } from './problem.ts';

/**
 * Finds where a field is written in a parsed YAML document, so a problem
 * found on the plain data can point at the offending line and column.
 */
export class YamlLocator {
  readonly #doc: Document;
  readonly #lines: LineCounter;
  readonly #file: string;

  constructor(file: string, doc: Document, lines: LineCounter) {
    this.#file = file;
    this.#doc = doc;
    this.#lines = lines;
  }

  /**
   * Position of the value at `path` (`at: 'key'`: of its key). A path that
   * does not exist resolves to the key of its deepest existing ancestor,
   * which is where a missing field would be written.
   */
  locate(path: FieldPath, at: 'value' | 'key' = 'value'): SourcePosition {
    let node: unknown = this.#doc.contents;
    let keyNode: unknown;
    let found = true;
    for (const segment of path) {
      node = this.#deref(node);
      let next: unknown;
      let nextKey: unknown;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
        if (pair) {
          next = pair.value;
          nextKey = pair.key;
        }
      } else if (isSeq(node) && typeof segment === 'number') {
        next = node.items[segment];
        nextKey = next;
      }
      if (nextKey === undefined) {
        found = false;
        break;
      }
      node = next ?? nextKey;
      keyNode = nextKey;
    }
    const target = !found || at === 'key' ? (keyNode ?? node) : (node ?? keyNode);
    return this.#position(target);
  }

  #deref(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.#doc) : node;
  }

  #position(node: unknown): SourcePosition {
    const range = (node as Node | null | undefined)?.range;
    const offset = range ? range[0] : 0;
    const { line, col } = this.#lines.linePos(offset);
    return { file: this.#file, line, col };
  }
}
