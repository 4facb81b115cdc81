import { domainToASCII } from 'node:url';
import { isIP, type Socket } from 'node:net';
import { EgressdError } from './errors.ts';

/**
 * Canonical form of a DNS name for comparison: lower case, no trailing dot,
 * internationalized labels in punycode. A leading `*.` is kept as is.
 * Returns '' when the name cannot be represented.
 */
export function normalizeHost(name: string): string {
  let host = name.trim();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (isIP(host)) return host.toLowerCase();
  const wildcard = host.startsWith('*.');
  const rest = wildcard ? host.slice(2) : host;
  const ascii = domainToASCII(rest);
  if (ascii === '') return '';
  return wildcard ? `*.${ascii}` : ascii;
}

export interface HostPort {
  host: string;
  port: number;
}

/** Parses `host:port`, `[v6]:port` or a bare host (then `defaultPort` is required). */
export function parseHostPort(value: string, defaultPort?: number): HostPort {
  let host = value;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2];
  } else if (value.split(':').length === 2) {
    [host, portText] = value.split(':') as [string, string];
  }
  const port = portText === undefined ? defaultPort : Number(portText);
  if (host === '' || port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `invalid host:port "${value}"`, { context: { value } });
  }
  return { host, port };
}

/** `host:port`, bracketing IPv6 addresses. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The kernel descriptor of a socket's handle (an internal of node:net; Node has no API for it), undefined when it has none (closed, or not a kernel socket). */
export function socketDescriptor(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
