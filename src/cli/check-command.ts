import { isIP } from 'node:net';
import { EgressdError } from '../core/errors.ts';
import { formatHostPort, parseHostPort } from '../core/net.ts';
import { formatOptions, parseCommand } from '../core/options.ts';
import {
  compilePolicy,
  DEFAULT_NAMESPACE,
  DEFAULT_ROOT_NAMESPACE,
  loadConfig,
  type DecideInput,
  type Explanation,
  type RuleRef,
} from '../policy/index.ts';
import { OUTPUT_OPTION, outputFormat, plural, problemLines, writeJson } from './egressctl-output.ts';

/**
 * `egressctl check --config PATH HOST[:PORT]`: what egressd would decide
 * for one destination, the rule behind it or the closest rules that did
 * not apply and why, and whether the gateway would originate TLS.
 * Exit 0 allowed, 1 denied, 2 could not answer (usage, invalid allowlist).
 */

const OPTIONS = {
  config: { type: 'list', default: [] as string[], description: 'allowlist file or directory (repeat or comma-separate for several)' },
  namespace: { type: 'string', default: DEFAULT_NAMESPACE, description: 'namespace of the calling workload' },
  labels: { type: 'list', default: [] as string[], description: 'labels of the calling workload, k=v,k2=v2' },
  address: { type: 'string', description: 'IP the workload dialled, matched against ServiceEntry addresses' },
  output: OUTPUT_OPTION,
  'default-namespace': { type: 'string', default: DEFAULT_NAMESPACE, description: 'namespace of resources without metadata.namespace' },
  'root-namespace': { type: 'string', default: DEFAULT_ROOT_NAMESPACE, description: 'namespace whose Sidecar is the mesh default' },
  help: { type: 'boolean', short: 'h', default: false, description: 'show this help' },
} as const;

const USAGE = `usage: egressctl check --config PATH [flags] HOST[:PORT]\n\nHOST: a DNS name or an IP address; PORT defaults to 443.\n\n${formatOptions(OPTIONS)}\n`;

export async function runCheckCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseCommand('check', OPTIONS, argv, {});
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const format = outputFormat('check', options.output);
  if (options.config.length === 0) throw new EgressdError('EGRESSD_ERR_USAGE', '--config is required');
  if (positionals.length !== 1) throw new EgressdError('EGRESSD_ERR_USAGE', `give exactly one HOST[:PORT], not ${positionals.length}`);
  const { host, port } = parseHostPort(positionals[0]!, 443);
  const input: DecideInput = { host, port, sourceNamespace: options.namespace, workloadLabels: parseLabels(options.labels) };
  if (options.address !== undefined) input.address = options.address;

  const config = await loadConfig(options.config, { defaultNamespace: options['default-namespace'], rootNamespace: options['root-namespace'] });
  if (config.errors.length > 0) {
    process.stderr.write(problemLines(config));
    process.stderr.write(`egressctl check: the allowlist has ${plural(config.errors.length, 'error')}; run egressctl validate\n`);
    return 2;
  }
  const explanation = compilePolicy(config).explain(input);
  if (format === 'json') writeJson(explanation);
  else process.stdout.write(render(explanation));
  return explanation.decision.allow ? 0 : 1;
}

function parseLabels(items: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new EgressdError('EGRESSD_ERR_USAGE', `--labels: "${item}" must be key=value`);
    labels[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return labels;
}

function where(ref: RuleRef): string {
  return `${ref.source.file}:${ref.source.line}:${ref.source.col}`;
}

function render(e: Explanation): string {
  const { decision, input } = e;
  const target = formatHostPort(input.host, input.port);
  const labels = Object.entries(input.workloadLabels).map(([k, v]) => `${k}=${v}`).join(',');
  const from = `from namespace ${input.sourceNamespace}${labels === '' ? '' : ` (labels ${labels})`}`;
  const verdict = !decision.allow ? 'DENY' : decision.wouldDeny ? 'ALLOW (REPORT mode: would be denied)' : 'ALLOW';
  const lines = [`${verdict} ${target} ${from}: ${decision.reason}`];
  lines.push(`  mode:      ${decision.mode} (${decision.sidecar ?? 'no Sidecar applies: built-in default'})`);
  if (e.matched !== undefined) {
    const port = e.matched.ports.find((p) => p.number === input.port);
    const protocol = port === undefined ? '' : `/${port.protocol}`;
    const what = isIP(e.matched.matchedHost.split('/')[0]!) === 0 ? 'host' : 'address';
    lines.push(`  rule:      ${e.matched.rule} ${what} ${e.matched.matchedHost} port ${input.port}${protocol} (${where(e.matched)})`);
  } else if (decision.reason === 'allow_any') {
    lines.push('  rule:      none matched; ALLOW_ANY lets unknown destinations through');
  }
  if (decision.allow && e.matched !== undefined) {
    const tls = decision.tls;
    lines.push(
      tls === undefined
        ? '  tls:       not originated (the client\'s bytes pass through as they are)'
        : `  tls:       originate ${tls.mode} to port ${tls.port}, SNI ${tls.sni ?? input.host} (${tls.source})`,
    );
    if (decision.upstream !== undefined) {
      const endpoints = decision.upstream.endpoints?.map((p) => formatHostPort(p.address, p.port)).join(', ');
      lines.push(`  upstream:  resolution ${decision.upstream.resolution}, port ${decision.upstream.port}${endpoints ? `, endpoints ${endpoints}` : ''}`);
    }
  }
  if (e.nearMisses.length > 0) {
    lines.push(e.matched === undefined ? '  closest rules that did not match:' : '  other rules that did not match:');
    for (const miss of e.nearMisses) lines.push(`    ${miss.rule} (${miss.matchedHost}, ${where(miss)}): ${miss.message}`);
  } else if (e.matched === undefined) {
    lines.push('  no ServiceEntry names this host or address');
  }
  return `${lines.join('\n')}\n`;
}
