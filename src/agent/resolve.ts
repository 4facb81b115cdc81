import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { EgressdError } from '../core/errors.ts';
import { normalizeHost } from '../core/net.ts';

/**
 * Name resolution for every connection the agent makes by name, with
 * curl-style overrides: `--resolve api.example.test:443:127.0.0.1` sends
 * that host and port to that address without asking DNS, for tests, demos,
 * and names that only exist for the workload. Several entries for one host
 * and port give several addresses, tried in their order.
 */

export interface ResolveEntry {
  host: string;
  port: number;
  address: string;
}

/** Every address of `host` (an IP literal is its own), in the order to try them. Rejects with EGRESSD_ERR_UPSTREAM. */
export type Resolver = (host: string, port: number) => Promise<string[]>;

/** Parses `host:port:address` (the address may be `[v6]` or bare v6). */
export function parseResolveEntry(text: string): ResolveEntry {
  const m = /^([^:\s]+):(\d{1,5}):(.+)$/.exec(text.trim());
  const address = m?.[3]?.replace(/^\[(.*)\]$/, '$1');
  const port = Number(m?.[2]);
  const host = m ? normalizeHost(m[1]!) : '';
  if (!m || host === '' || port < 1 || port > 65535 || !isIP(address ?? '')) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `--resolve "${text}": expected host:port:address with an IP address, e.g. api.example.test:443:127.0.0.1`);
  }
  return { host, port, address: address! };
}

export function createResolver(entries: readonly ResolveEntry[]): Resolver {
  const table = new Map<string, string[]>();
  for (const e of entries) table.set(`${e.host}:${e.port}`, [...(table.get(`${e.host}:${e.port}`) ?? []), e.address]);
  return async (host, port) => {
    const name = normalizeHost(host);
    if (isIP(name)) return [name];
    const override = table.get(`${name}:${port}`);
    if (override !== undefined) return override;
    try {
      return (await lookup(name, { all: true, verbatim: true })).map((a) => a.address);
    } catch (err) {
      throw new EgressdError('EGRESSD_ERR_UPSTREAM', `cannot resolve ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        cause: err,
        context: { host: name },
      });
    }
  };
}
