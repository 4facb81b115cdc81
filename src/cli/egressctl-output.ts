import { EgressdError } from '../core/errors.ts';
import { formatProblem, type LoadedConfig } from '../policy/index.ts';

/** Pieces the egressctl commands share: output format flag, problem listing. */

export const OUTPUT_OPTION = {
  type: 'string',
  default: 'text',
  description: 'text for people, json for machines',
} as const;

export type OutputFormat = 'text' | 'json';

export function outputFormat(command: string, value: string): OutputFormat {
  if (value === 'text' || value === 'json') return value;
  throw new EgressdError('EGRESSD_ERR_USAGE', `${command}: --output must be text or json, not "${value}"`);
}

/** Errors, then warnings, then notices, one per line, compiler style. */
export function problemLines(config: LoadedConfig): string {
  return [...config.errors, ...config.warnings, ...config.notices].map((p) => `${formatProblem(p)}\n`).join('');
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
