import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { ConfigEvent, ConfigSource, ConfigStatus, PolicySnapshot, ReloadOutcome } from './config-source.ts';
import { loadConfig } from './load-config.ts';
import { compilePolicy, type Policy } from './policy.ts';
import { formatProblem } from './problem.ts';
import type { LoadOptions } from './resources.ts';
import { isoTime } from '../core/iso-time.ts';

/**
 * The allowlist from files and directories (a mounted ConfigMap), loaded
 * with the policy loader and reloaded when it changes: fs.watch with a
 * debounce, and a periodic check as a fallback for filesystems where
 * watching is unreliable (ConfigMap symlink swaps, network volumes). A
 * reload happens only when the files' contents changed, so a bad config is
 * reported once, not every period. A load with any error is refused as a
 * whole: a typo in one file neither drops nor widens what is allowed.
 */

export interface DirectorySourceOptions {
  /** Directories (walked recursively) and files. */
  paths: readonly string[];
  logger: Logger;
  loadOptions?: LoadOptions;
  /** Follow changes with fs.watch (default true). */
  watch?: boolean;
  /** Quiet time after a change event before reloading (editors write in several steps). */
  debounceMs?: number;
  /** How often the fallback check compares the files' contents; 0: never (reload() still works). */
  intervalMs?: number;
}

export function directorySource(options: DirectorySourceOptions): ConfigSource {
  const { paths, logger } = options;
  const debounceMs = options.debounceMs ?? 250;
  const intervalMs = options.intervalMs ?? 10_000;
  const listeners = new Set<(event: ConfigEvent) => void>();
  let snapshot: PolicySnapshot | undefined;
  let lastFingerprint: string | undefined;
  let lastAttemptAt: Date | undefined;
  let lastError: string[] | null = null;
  let reloads = 0;
  let failures = 0;
  let watchers: FSWatcher[] = [];
  let debounce: NodeJS.Timeout | undefined;
  let interval: NodeJS.Timeout | undefined;
  let tail: Promise<unknown> = Promise.resolve();
  /** A check queued behind the running one: later callers share it instead of queueing more. */
  let queued: { promise: Promise<ReloadOutcome>; force: boolean } | undefined;
  let closed = false;

  const emit = (event: ConfigEvent): void => {
    for (const listener of listeners) listener(event);
  };

  const check = async (force: boolean): Promise<ReloadOutcome> => {
    const fingerprint = await fingerprintOf(paths);
    if (!force && fingerprint === lastFingerprint) return 'unchanged';
    lastFingerprint = fingerprint;
    lastAttemptAt = new Date();
    const config = await loadConfig(paths, options.loadOptions);
    let problems = config.errors.map(formatProblem);
    let policy: Policy | undefined;
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
      return 'failed';
    }
    reloads++;
    lastError = null;
    snapshot = {
      policy,
      config,
      version: reloads,
      loadedAt: lastAttemptAt,
      files: config.files,
      summary: { ...policy.summary },
      warnings: config.warnings.map(formatProblem),
    };
    emit({ type: 'applied', snapshot });
    return 'loaded';
  };

  /** One check at a time, in order; a change seen during a check is looked at by the next. */
  const reload = (force = false): Promise<ReloadOutcome> => {
    if (queued && (queued.force || !force)) return queued.promise;
    const promise: Promise<ReloadOutcome> = tail.then(async () => {
      if (queued?.promise === promise) queued = undefined;
      if (closed) return 'unchanged';
      try {
        return await check(force);
      } catch (err) {
        logger.error({ err }, 'config reload failed unexpectedly');
        return 'failed';
      }
    });
    queued = { promise, force };
    tail = promise;
    return promise;
  };

  const schedule = (): void => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), debounceMs);
  };

  return {
    async start() {
      await reload();
      if (options.watch ?? true) watchers = paths.flatMap((path) => watchPath(path, schedule, logger));
      if (intervalMs > 0) {
        interval = setInterval(() => void reload(), intervalMs);
        interval.unref();
      }
    },
    current: () => snapshot,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    reload,
    status(): ConfigStatus {
      const current = snapshot === undefined ? null : (({ policy: _p, config: _c, ...rest }) => rest)(snapshot);
      return {
        source: `directory ${paths.join(', ')}`,
        current,
        lastAttemptAt: lastAttemptAt === undefined ? null : isoTime(lastAttemptAt.getTime()),
        lastError,
        reloads,
        failures,
      };
    },
    async close() {
      closed = true;
      clearTimeout(debounce);
      clearInterval(interval);
      for (const watcher of watchers) watcher.close();
      await tail;
    },
  };
}

function watchPath(path: string, onChange: () => void, logger: Logger): FSWatcher[] {
  try {
    const watcher = watch(path, { recursive: true }, onChange);
    watcher.on('error', (err) => logger.warn({ err, path }, 'watching the config failed; relying on the periodic check'));
    return [watcher];
  } catch (err) {
    logger.warn({ err, path }, 'cannot watch the config; relying on the periodic check');
    return [];
  }
}

/**
 * A hash of the names and contents of the files the loader would read (same
 * walk: *.yaml, *.yml, no dot names; a path given explicitly whatever its name).
 */
async function fingerprintOf(paths: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (p: string, explicit: boolean): Promise<void> => {
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
      for (const name of names) if (!name.startsWith('.')) await walk(join(p, name), false);
      return;
    }
    if (!explicit && !/\.ya?ml$/i.test(p)) return;
    hash.update(`${p}\0`);
    try {
      hash.update(await readFile(p));
    } catch (err) {
      hash.update(`error ${(err as NodeJS.ErrnoException).code}`);
    }
    hash.update('\0');
  };
  for (const path of paths) await walk(path, true);
  return hash.digest('hex');
}
