import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.ts';

/**
 * Reload on change, keeping the last good value. Files are polled by
 * metadata (inode, size, mtime, following symlinks), which sees a Kubernetes
 * Secret or ConfigMap update (an atomic symlink swap) where fs.watch often
 * does not; the full load runs only when the fingerprint changed.
 */

export type ReloadOutcome = 'loaded' | 'unchanged' | 'failed';

export interface ReloaderOptions<T> {
  /** Files or directories (walked recursively) whose change triggers a reload. */
  paths: () => readonly string[];
  load: () => Promise<T>;
  /** Applies a freshly loaded value. */
  apply: (value: T) => void;
  onError: (err: unknown) => void;
  intervalMs: number;
}

export class Reloader<T> {
  readonly #options: ReloaderOptions<T>;
  #fingerprint: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<ReloadOutcome> | undefined;
  #lastError: string | null = null;
  #lastLoaded: Date | null = null;

  constructor(options: ReloaderOptions<T>) {
    this.#options = options;
  }

  get lastError(): string | null {
    return this.#lastError;
  }

  get lastLoaded(): Date | null {
    return this.#lastLoaded;
  }

  /** Loads now; rejects when the first load fails, so that a bad start is an error, not a silent empty state. */
  async start(): Promise<void> {
    const fingerprint = await fingerprintPaths(this.#options.paths());
    const value = await this.#options.load();
    this.#options.apply(value);
    this.#fingerprint = fingerprint;
    this.#lastLoaded = new Date();
    if (this.#options.intervalMs > 0) {
      this.#timer = setInterval(() => void this.check(), this.#options.intervalMs);
      this.#timer.unref();
    }
  }

  /** Reloads if the files changed. One check at a time; concurrent callers share it. */
  check(force = false): Promise<ReloadOutcome> {
    this.#running ??= this.#check(force).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #check(force: boolean): Promise<ReloadOutcome> {
    try {
      const fingerprint = await fingerprintPaths(this.#options.paths());
      if (!force && fingerprint === this.#fingerprint) return 'unchanged';
      const value = await this.#options.load();
      this.#options.apply(value);
      this.#fingerprint = fingerprint;
      this.#lastError = null;
      this.#lastLoaded = new Date();
      return 'loaded';
    } catch (err) {
      this.#lastError = errorMessage(err);
      this.#options.onError(err);
      return 'failed';
    }
  }
}

/** inode, size and mtime of every file under the paths; a missing path counts as its own state. */
export async function fingerprintPaths(paths: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const path of paths) await collect(path, parts, 0);
  return parts.join('\n');
}

async function collect(path: string, parts: string[], depth: number): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    parts.push(`${path} ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    return;
  }
  if (info.isDirectory() && depth < 8) {
    const names = (await readdir(path)).filter((n) => !n.startsWith('..')).sort();
    for (const name of names) await collect(join(path, name), parts, depth + 1);
    return;
  }
  parts.push(`${path} ${info.ino} ${info.size} ${info.mtimeMs}`);
}
