import { isIP } from 'node:net';
import { EgressdError } from '../core/errors.ts';
import { normalizeHost } from '../core/net.ts';

/**
 * curl's `--connect-to HOST1:PORT1:HOST2:PORT2`: a connection the agent
 * would make to HOST1:PORT1 goes to HOST2:PORT2 instead. The allowlist
 * still decides on what the client asked for; this only changes where the
 * bytes go, after the decision. It lets a lab or a demo serve
 * `api.example.test:443` from `127.0.0.1:<port>` without root or DNS. As in
 * curl, an empty HOST1 or PORT1 matches any, an empty HOST2 or PORT2 keeps
 * the original, and the first matching entry wins.
 */

export interface ConnectToEntry {
  /** What it applies to; an absent host or port matches any. */
  from: { host?: string; port?: number };
  /** Where to go instead; an absent host or port keeps the original. */
  to: { host?: string; port?: number };
}

export interface Endpoint {
  host: string;
  port: number;
}

const HOST = String.raw`(\[[^\]]*\]|[^:[\]]*)`;
const ENTRY = new RegExp(`^${HOST}:(\\d*):${HOST}:(\\d*)$`);

/** Parses `HOST1:PORT1:HOST2:PORT2`; IPv6 addresses in brackets; any part may be empty. */
export function parseConnectTo(text: string): ConnectToEntry {
  const m = ENTRY.exec(text.trim());
  const problem = (why: string): EgressdError =>
    new EgressdError('EGRESSD_ERR_USAGE', `--connect-to "${text}": ${why}; expected HOST1:PORT1:HOST2:PORT2, e.g. api.example.test:443:127.0.0.1:8443`);
  if (!m) throw problem('not four colon-separated parts');
  const [, host1, port1, host2, port2] = m as unknown as [string, string, string, string, string];
  const entry: ConnectToEntry = { from: {}, to: {} };
  for (const [side, hostText, portText] of [['from', host1, port1], ['to', host2, port2]] as const) {
    if (hostText !== '') {
      const bare = hostText.replace(/^\[(.*)\]$/, '$1');
      if (hostText.startsWith('[') && isIP(bare) !== 6) throw problem(`"${hostText}" is not a bracketed IPv6 address`);
      const host = normalizeHost(bare);
      if (host === '' || host.startsWith('*.')) throw problem(`"${hostText}" is not a host name or IP address`);
      entry[side].host = host;
    }
    if (portText !== '') {
      const port = Number(portText);
      if (port < 1 || port > 65535) throw problem(`"${portText}" is not a port (1-65535)`);
      entry[side].port = port;
    }
  }
  return entry;
}

/**
 * Where to connect for `endpoint`. An entry applies when it names the
 * endpoint itself (a name to resolve, or an IP), or the destination the
 * client asked for (`requested`: the decided host and port), so that
 * `api.example.test:443:...` applies however the agent would have reached
 * api.example.test:443 (the name, its endpoints, or the IP the client dialled).
 */
export function applyConnectTo(entries: readonly ConnectToEntry[], endpoint: Endpoint, requested: Endpoint): Endpoint {
  const names = (e: Endpoint, from: ConnectToEntry['from']): boolean =>
    (from.host === undefined || from.host === normalizeHost(e.host)) && (from.port === undefined || from.port === e.port);
  const entry = entries.find((e) => names(endpoint, e.from) || names(requested, e.from));
  if (entry === undefined) return endpoint;
  return { host: entry.to.host ?? endpoint.host, port: entry.to.port ?? endpoint.port };
}

