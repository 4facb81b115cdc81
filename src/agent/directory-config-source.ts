import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { compilePolicy, formatProblem, loadConfig } from '../policy/index.ts';
import type { ConfigEvent, ConfigSource, ConfigStatus, PolicySnapshot } from './config-source.ts';

/**
 * The allowlist from a directory (a mounted ConfigMap), loaded with the
 * policy loader and reloaded when it changes: fs.watch with a debounce, and
 * a periodic check as a fallback for filesystems where watching is unreliable
 * (ConfigMap symlink swaps, network volumes). A reload happens only when the
 * files' contents changed, so a bad config is reported once, not every period.
 */

export interface DirectoryConfigSourceOptions {
  dir: string;
  logger: Logger;
  /** Quiet time after a change event before reloading (editors write in several steps). */
  debounceMs?: number;
  /** How often the fallback check compares the files' contents. */
  intervalMs?: number;
}

export function directoryConfigSource(options: DirectoryConfigSourceOptions): ConfigSource {
  const { dir, logger } = options;
  const debounceMs = options.debounceMs ?? 250;
  const intervalMs = options.intervalMs ?? 10_000;
  const listeners = new Set<(event: ConfigEvent) => void>();
  let snapshot: PolicySnapshot | undefined;
  let lastFingerprint: string | undefined;
  let lastAttemptAt: Date | undefined;
  let lastError: string[] | null = null;
  let reloads = 0;
  let failures = 0;
  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let interval: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;

  const emit = (event: ConfigEvent): void => {
    for (const listener of listeners) listener(event);
  };

  const load = async (): Promise<void> => {
    const fingerprint = await fingerprintOf(dir);
    if (fingerprint === lastFingerprint) return;
    lastFingerprint = fingerprint;
    lastAttemptAt = new Date();
    const config = await loadConfig([dir]);
    let problems = config.errors.map(formatProblem);
    let policy;
    if (problems.length === 0) {
      try {
        policy = compilePolicy(config);
      } catch (err) {
        problems = [errorMessage(err)];
      }
    }
    if (!policy) {
      failures++;
      lastError = problems;
      emit({ type: 'rejected', problems });
      return;
    }
    reloads++;
    lastError = null;
    snapshot = {
      policy,
      version: reloads,
      loadedAt: lastAttemptAt,
      files: config.files,
      summary: { ...policy.summary },
      warnings: config.warnings.map(formatProblem),
    };
    emit({ type: 'applied', snapshot });
  };

  /** One load at a time; a change during a load triggers one more. */
  const reload = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await load();
        } catch (err) {
          logger.error({ err }, 'config reload failed unexpectedly');
        }
      } while (again && !closed);
      running = undefined;
    })();
    return running;
  };

  const schedule = (): void => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), debounceMs);
  };

  return {
    async start() {
      await reload();
      try {
        watcher = watch(dir, { recursive: true }, schedule);
        watcher.on('error', (err) => logger.warn({ err, dir }, 'watching the config directory failed; relying on the periodic check'));
      } catch (err) {
        logger.warn({ err, dir }, 'cannot watch the config directory; relying on the periodic check');
      }
      interval = setInterval(() => void reload(), intervalMs);
    },
    current: () => snapshot,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    status(): ConfigStatus {
      const current = snapshot === undefined ? null : (({ policy: _, ...rest }) => rest)(snapshot);
      return {
        source: `directory ${dir}`,
        current,
        lastAttemptAt: lastAttemptAt?.toISOString() ?? null,
        lastError,
        reloads,
        failures,
      };
    },
    async close() {
      closed = true;
      clearTimeout(debounce);
      clearInterval(interval);
      watcher?.close();
      await running;
    },
  };
}

/** A hash of the names and contents of the files the loader would read (same walk: *.yaml, *.yml, no dot names). */
async function fingerprintOf(path: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (p: string): Promise<void> => {
    let info;
    try {
      info = await stat(p);
    } catch (err) {
      hash.update(`${p}\0error ${(err as NodeJS.ErrnoException).code}\0`);
      return;
    }
    if (info.isDirectory()) {
      let names: string[] = [];
      try {
        names = (await readdir(p)).sort();
      } catch (err) {
        hash.update(`${p}\0error ${(err as NodeJS.ErrnoException).code}\0`);
      }
      for (const name of names) if (!name.startsWith('.')) await walk(join(p, name));
      return;
    }
    if (!/\.ya?ml$/i.test(p)) return;
    hash.update(`${p}\0`);
    try {
      hash.update(await readFile(p));
    } catch (err) {
      hash.update(`error ${(err as NodeJS.ErrnoException).code}`);
    }
    hash.update('\0');
  };
  await walk(path);
  return hash.digest('hex');
}
