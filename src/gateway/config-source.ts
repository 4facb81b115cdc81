import { EgressdError } from '../core/errors.ts';
import { compilePolicy, formatProblem, loadConfig, type LoadOptions } from '../policy/index.ts';
import type { PolicySnapshot } from './authorize.ts';

/**
 * The allowlist from files and directories, compiled. A load with any error
 * is refused as a whole: the caller keeps the last good snapshot, so a typo
 * in one file neither drops nor widens what is allowed.
 */
export interface LoadedSnapshot extends PolicySnapshot {
  files: readonly string[];
  warnings: number;
  loadedAt: Date;
}

export async function loadSnapshot(paths: readonly string[], options: LoadOptions = {}): Promise<LoadedSnapshot> {
  const config = await loadConfig(paths, options);
  if (config.errors.length > 0) {
    const first = config.errors.slice(0, 3).map(formatProblem).join('; ');
    throw new EgressdError('EGRESSD_ERR_CONFIG_INVALID', `allowlist from ${paths.join(', ')}: ${config.errors.length} error(s): ${first}`, {
      context: { errors: config.errors.length },
    });
  }
  const policy = compilePolicy(config);
  return {
    decide: (input) => policy.decide(input),
    config,
    files: config.files,
    warnings: config.warnings.length,
    loadedAt: new Date(),
  };
}
