/**
 * A writable that parses the JSON lines written to it (audit records, pino
 * logs) so tests assert on objects. Waits are event-driven: `find` wakes on
 * each write instead of polling, and gives up after WAIT_MS with what it has.
 */
import { Writable } from 'node:stream';

/** Generous because whole agents and gateways run in-process on a shared machine; only a failing test waits this long. */
const WAIT_MS = 30_000;

export class JsonLines<T = Record<string, unknown>> extends Writable {
  readonly items: T[] = [];
  #pending = '';
  #waiters: (() => void)[] = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.#pending += chunk.toString();
    const lines = this.#pending.split('\n');
    this.#pending = lines.pop()!;
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        this.items.push(JSON.parse(line) as T);
      } catch {
        throw new Error(`not a JSON line: ${line}`);
      }
    }
    for (const wake of this.#waiters.splice(0)) wake();
    done();
  }

  /** Resolves with the first item matching, waiting for it if need be. */
  async find(match: (item: T) => boolean, what = 'a matching line'): Promise<T> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const found = this.items.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; have ${JSON.stringify(this.items, null, 1).slice(0, 4000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The first `n` items, once that many have been written. */
  async count(n: number): Promise<T[]> {
    await this.find(() => this.items.length >= n, `${n} lines`);
    return this.items.slice(0, n);
  }
}
