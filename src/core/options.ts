import { parseArgs } from 'node:util';
import { EgressdError } from './errors.ts';

/**
 * Command options that come from a flag or, failing that, from an environment
 * variable (what an init container or sidecar is given), then a default.
 * Every bad value is reported at once, naming the flag and the variable;
 * the caller (a dispatcher) names the command in front of the message.
 */
export type OptionType = 'string' | 'integer' | 'boolean' | 'list';

export interface OptionSpec {
  type: OptionType;
  /** Environment variable that supplies the value when the flag is absent. */
  env?: string;
  default?: string | number | boolean | readonly string[];
  description: string;
  short?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S['type'] extends 'integer'
  ? number
  : S['type'] extends 'boolean'
    ? boolean
    : S['type'] extends 'list'
      ? string[]
      : string;

export type OptionValues<T extends OptionSpecs> = {
  [K in keyof T]: T[K]['default'] extends undefined ? ValueOf<T[K]> | undefined : ValueOf<T[K]>;
};

export interface ParsedCommand<T extends OptionSpecs> {
  options: OptionValues<T>;
  positionals: string[];
}

/** The process environment, read here and nowhere else. */
export function processEnv(): Readonly<Record<string, string | undefined>> {
  return process.env;
}

export function parseCommand<T extends OptionSpecs>(
  command: string,
  specs: T,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = processEnv(),
): ParsedCommand<T> {
  const parseSpec: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    parseSpec[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string', multiple: spec.type === 'list' };
    if (spec.short) parseSpec[name]!.short = spec.short;
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: spellBooleanAssignments(argv, specs), options: parseSpec, allowPositionals: true, allowNegative: true, strict: true } as Parameters<typeof parseArgs>[0]) as typeof parsed;
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_USAGE', (err as Error).message, { cause: err, context: { command } });
  }
  const raw = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    let value: string | boolean | string[] | undefined = raw[name];
    let source = `--${name}`;
    if (value === undefined && spec.env && env[spec.env] !== undefined && env[spec.env] !== '') {
      value = env[spec.env]!;
      source = spec.env;
    }
    if (value === undefined) {
      out[name] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
      continue;
    }
    switch (spec.type) {
      case 'boolean':
        if (typeof value === 'boolean') out[name] = value;
        else if (/^(true|1|yes)$/i.test(String(value))) out[name] = true;
        else if (/^(false|0|no)$/i.test(String(value))) out[name] = false;
        else problems.push(`${source}: "${value}" is not a boolean (true or false)`);
        break;
      case 'integer': {
        const n = Number(value);
        if (!Number.isSafeInteger(n) || String(value).trim() === '') problems.push(`${source}: "${value}" is not an integer`);
        else out[name] = n;
        break;
      }
      case 'list':
        out[name] = (Array.isArray(value) ? value : [String(value)])
          .flatMap((v) => v.split(','))
          .map((v) => v.trim())
          .filter((v) => v !== '');
        break;
      default:
        out[name] = String(value);
    }
  }
  if (problems.length > 0) {
    throw new EgressdError('EGRESSD_ERR_USAGE', problems.join('; '), { context: { command, problems } });
  }
  return { options: out as OptionValues<T>, positionals: parsed.positionals };
}

/** `--flag=true` and `--flag=false` for booleans, as Kubernetes manifests like to write them, become `--flag` and `--no-flag`. */
function spellBooleanAssignments(argv: readonly string[], specs: OptionSpecs): string[] {
  return argv.map((arg) => {
    const m = /^--([a-z0-9-]+)=(true|false)$/i.exec(arg);
    if (!m || specs[m[1]!]?.type !== 'boolean') return arg;
    return m[2]!.toLowerCase() === 'true' ? `--${m[1]}` : `--no-${m[1]}`;
  });
}

/** Help text for a command's options, flags with their variables and defaults. */
export function formatOptions(specs: OptionSpecs): string {
  return Object.entries(specs)
    .map(([name, spec]) => {
      const env = spec.env ? ` [$${spec.env}]` : '';
      const shown = Array.isArray(spec.default) ? spec.default.join(',') : spec.default;
      const def = shown === undefined || shown === '' ? '' : ` (default ${String(shown)})`;
      return `  --${name}${env}\n      ${spec.description}${def}`;
    })
    .join('\n');
}
