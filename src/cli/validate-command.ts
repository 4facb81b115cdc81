import { EgressdError } from '../core/errors.ts';
import { formatOptions, parseCommand } from '../core/options.ts';
import { DEFAULT_NAMESPACE, DEFAULT_ROOT_NAMESPACE, loadConfig, type LoadedConfig } from '../policy/index.ts';
import { OUTPUT_OPTION, outputFormat, plural, problemLines, writeJson } from './egressctl-output.ts';

/**
 * `egressctl validate PATH...`: loads files and directories as one
 * allowlist and reports every problem at once. Exit 0 valid (warnings
 * allowed), 1 invalid, 2 usage.
 */

const OPTIONS = {
  output: OUTPUT_OPTION,
  'default-namespace': { type: 'string', default: DEFAULT_NAMESPACE, description: 'namespace of resources without metadata.namespace' },
  'root-namespace': { type: 'string', default: DEFAULT_ROOT_NAMESPACE, description: 'namespace whose Sidecar is the mesh default' },
  help: { type: 'boolean', short: 'h', default: false, description: 'show this help' },
} as const;

const USAGE = `usage: egressctl validate [flags] PATH...\n\nPATH: a YAML file or a directory (read recursively, *.yaml and *.yml).\n\n${formatOptions(OPTIONS)}\n`;

export interface ValidateSummary {
  files: number;
  resources: number;
  serviceEntries: number;
  destinationRules: number;
  sidecars: number;
  hosts: number;
  errors: number;
  warnings: number;
  notices: number;
}

export async function runValidateCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseCommand('validate', OPTIONS, argv, {});
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const format = outputFormat('validate', options.output);
  if (positionals.length === 0) throw new EgressdError('EGRESSD_ERR_USAGE', 'give at least one file or directory');
  const config = await loadConfig(positionals, { defaultNamespace: options['default-namespace'], rootNamespace: options['root-namespace'] });
  const summary = summarize(config);
  const valid = config.errors.length === 0;
  if (format === 'json') {
    writeJson({ valid, summary, errors: config.errors, warnings: config.warnings, notices: config.notices });
  } else {
    process.stderr.write(problemLines(config));
    process.stdout.write(`${summaryLine(valid, summary)}\n`);
  }
  return valid ? 0 : 1;
}

function summarize(config: LoadedConfig): ValidateSummary {
  const hosts = new Set(config.serviceEntries.flatMap((e) => e.hosts));
  return {
    files: config.files.length,
    resources: config.serviceEntries.length + config.destinationRules.length + config.sidecars.length,
    serviceEntries: config.serviceEntries.length,
    destinationRules: config.destinationRules.length,
    sidecars: config.sidecars.length,
    hosts: hosts.size,
    errors: config.errors.length,
    warnings: config.warnings.length,
    notices: config.notices.length,
  };
}

function summaryLine(valid: boolean, s: ValidateSummary): string {
  const kinds = `${s.serviceEntries} ServiceEntry, ${s.destinationRules} DestinationRule, ${s.sidecars} Sidecar`;
  if (valid) return `valid: ${plural(s.resources, 'resource')} (${kinds}), ${plural(s.hosts, 'host')}, ${plural(s.warnings, 'warning')} in ${plural(s.files, 'file')}`;
  return `invalid: ${plural(s.errors, 'error')}, ${plural(s.warnings, 'warning')} in ${plural(s.files, 'file')}; ${plural(s.resources, 'valid resource')} (${kinds}), ${plural(s.hosts, 'host')}`;
}
