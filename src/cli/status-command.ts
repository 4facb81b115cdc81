import { EgressdError, errorMessage } from '../core/errors.ts';
import { formatHostPort } from '../core/net.ts';
import { formatOptions, parseCommand } from '../core/options.ts';
import type { CertsDump } from '../agent/identity.ts';
import { OUTPUT_OPTION, outputFormat, plural, writeJson } from './egressctl-output.ts';

/**
 * `egressctl status`: one look at a running agent through its admin port:
 * readiness, the config in force, listeners, the workload certificate and
 * the connection counters. Exit 0 ready, 1 not ready, 2 unreachable.
 */

const OPTIONS = {
  admin: { type: 'string', default: 'http://127.0.0.1:15000', description: "the agent's admin address" },
  'timeout-seconds': { type: 'integer', default: 5, description: 'give up on an admin request after this long' },
  output: OUTPUT_OPTION,
  help: { type: 'boolean', short: 'h', default: false, description: 'show this help' },
} as const;

const USAGE = `usage: egressctl status [--admin http://127.0.0.1:15000] [--output json]\n\nExit status: 0 ready, 1 not ready, 2 the admin endpoint cannot be reached.\n\n${formatOptions(OPTIONS)}\n`;

export interface AgentStatus {
  admin: string;
  ready: boolean;
  /** Why not ready, as the agent says it. */
  reason: string | null;
  config: {
    source: string;
    version: number | null;
    files: number;
    summary: Record<string, number>;
    loadedAt: string | null;
    lastError: string[] | null;
    reloads: number;
    failures: number;
  } | null;
  workload: { namespace: string; labels: Record<string, string> } | null;
  listeners: Record<string, string[]>;
  /** From /certs; null when the agent does not serve it. */
  certificate: CertsDump | null;
  connections: { allowed: number; denied: number; open: number; deniedBy: Record<string, number> };
}

export async function runStatusCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseCommand('status', OPTIONS, argv, {});
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new EgressdError('EGRESSD_ERR_USAGE', `unexpected argument "${positionals[0]}"`);
  const format = outputFormat('status', options.output);
  const base = adminBase(options.admin);
  if (options['timeout-seconds'] < 1) throw new EgressdError('EGRESSD_ERR_USAGE', '--timeout-seconds must be at least 1');
  const status = await agentStatus(base, options['timeout-seconds'] * 1000);
  if (format === 'json') writeJson(status);
  else process.stdout.write(formatStatus(status));
  return status.ready ? 0 : 1;
}

function adminBase(text: string): URL {
  const url = URL.canParse(text) ? new URL(text) : URL.canParse(`http://${text}`) ? new URL(`http://${text}`) : undefined;
  if (url?.protocol !== 'http:' || url.hostname === '') {
    throw new EgressdError('EGRESSD_ERR_USAGE', `--admin "${text}" is not an http:// address (e.g. http://127.0.0.1:15000)`);
  }
  return url;
}

/** Reads the four admin endpoints at once; only readiness is required, the rest fills in what it can. */
export async function agentStatus(base: URL, timeoutMs: number): Promise<AgentStatus> {
  const get = async (path: string): Promise<{ status: number; body: string }> => {
    const url = new URL(path, base);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      return { status: res.status, body: await res.text() };
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? errorMessage(err);
      throw new EgressdError('EGRESSD_ERR_ADMIN_UNREACHABLE', `cannot reach the agent's admin endpoint ${url.href}: ${cause}`, { cause: err, context: { url: url.href } });
    }
  };
  const [ready, dump, certs, stats] = await Promise.all([get('/healthz/ready'), get('/config_dump'), get('/certs'), get('/stats/prometheus')]);
  const configDump = ok(dump) ? parseJson(dump.body) : undefined;
  return {
    admin: base.href.replace(/\/$/, ''),
    ready: ready.status === 200,
    reason: ready.status === 200 ? null : ready.body.trim().replace(/^NOT READY: /, '') || `HTTP ${ready.status}`,
    config: configSection(configDump),
    workload: workloadSection(configDump),
    listeners: listenersSection(configDump),
    certificate: ok(certs) ? ((parseJson(certs.body) as CertsDump | undefined) ?? null) : null,
    connections: ok(stats) ? connectionCounts(stats.body) : { allowed: 0, denied: 0, open: 0, deniedBy: {} },
  };
}

function ok(r: { status: number }): boolean {
  return r.status === 200;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);

function configSection(dump: unknown): AgentStatus['config'] {
  const config = obj(obj(dump)?.config);
  if (!config) return null;
  const current = obj(config.current);
  return {
    source: String(config.source ?? ''),
    version: typeof current?.version === 'number' ? current.version : null,
    files: Array.isArray(current?.files) ? current.files.length : 0,
    summary: (obj(current?.summary) as Record<string, number> | undefined) ?? {},
    loadedAt: typeof current?.loadedAt === 'string' ? current.loadedAt : null,
    lastError: Array.isArray(config.lastError) ? config.lastError.map(String) : null,
    reloads: Number(config.reloads ?? 0),
    failures: Number(config.failures ?? 0),
  };
}

function workloadSection(dump: unknown): AgentStatus['workload'] {
  const options = obj(obj(dump)?.options);
  if (!options) return null;
  return { namespace: String(options.namespace ?? ''), labels: (obj(options.labels) as Record<string, string> | undefined) ?? {} };
}

function listenersSection(dump: unknown): AgentStatus['listeners'] {
  const out: AgentStatus['listeners'] = {};
  for (const [name, value] of Object.entries(obj(obj(dump)?.listeners) ?? {})) {
    out[name] = [value]
      .flat()
      .map(obj)
      .filter((a): a is Json => a !== undefined && typeof a.address === 'string' && typeof a.port === 'number')
      .map((a) => formatHostPort(a.address as string, a.port as number));
  }
  return out;
}

const SAMPLE = /^(egressd_agent_connections_total|egressd_agent_active_connections)\{([^}]*)\}\s+(\S+)/;

/** The agent's connection counters, from the Prometheus text: allowed, denied by reason, open now. */
export function connectionCounts(text: string): AgentStatus['connections'] {
  const counts: AgentStatus['connections'] = { allowed: 0, denied: 0, open: 0, deniedBy: {} };
  for (const line of text.split('\n')) {
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    if (m[1] === 'egressd_agent_active_connections') {
      counts.open += value;
      continue;
    }
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (labels.decision === 'allow') {
      counts.allowed += value;
    } else if (labels.decision === 'deny') {
      counts.denied += value;
      const reason = labels.reason ?? 'unknown';
      counts.deniedBy[reason] = (counts.deniedBy[reason] ?? 0) + value;
    }
  }
  return counts;
}

export function formatStatus(s: AgentStatus): string {
  const lines = [`egressd agent at ${s.admin}: ${s.ready ? 'ready' : `NOT READY: ${s.reason ?? ''}`}`];
  const row = (label: string, text: string): void => void lines.push(`  ${label.padEnd(12)}${text}`);
  if (s.config) {
    const c = s.config;
    const held = Object.entries(c.summary).filter(([k]) => k !== 'resources').map(([k, v]) => `${k} ${v}`).join(', ');
    row('config', c.version === null ? `${c.source}: nothing loaded` : `${c.source}: version ${c.version}, ${plural(c.files, 'file')} (${held}), loaded ${c.loadedAt ?? '?'}`);
    if (c.lastError) row('', `last change refused: ${c.lastError[0] ?? ''}${c.lastError.length > 1 ? ` (+${c.lastError.length - 1} more)` : ''}`);
  }
  if (s.workload) {
    const labels = Object.entries(s.workload.labels).map(([k, v]) => `${k}=${v}`).join(',');
    row('workload', `namespace ${s.workload.namespace}${labels === '' ? '' : `, labels ${labels}`}`);
  }
  const listeners = Object.entries(s.listeners).map(([name, list]) => `${name} ${list.join(', ')}`).join('; ');
  if (listeners !== '') row('listeners', listeners);
  row('certificate', certificateLine(s.certificate));
  if (s.certificate?.lastError) row('', `last CA error: ${s.certificate.lastError}`);
  const denied = Object.entries(s.connections.deniedBy).sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r} ${n}`).join(', ');
  row('connections', `${s.connections.allowed} allowed, ${s.connections.denied} denied${denied === '' ? '' : ` (${denied})`}, ${s.connections.open} open`);
  return `${lines.join('\n')}\n`;
}

function certificateLine(c: CertsDump | null): string {
  if (c === null) return 'unknown (the agent does not serve /certs)';
  if (!c.enabled) return 'none (identity not enabled: no --ca-address)';
  const state = c.serial === null ? 'not issued yet' : `serial ${c.serial}, valid ${c.notBefore} to ${c.notAfter}${c.ready ? '' : ' (EXPIRED)'}`;
  return `${c.identity}, ${state}, next renewal ${c.nextRenewal ?? '-'}, ${plural(c.renewals ?? 0, 'renewal')}, ${plural(c.failures ?? 0, 'failure')}`;
}
