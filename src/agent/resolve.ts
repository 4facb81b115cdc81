import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { EgressdError } from '../core/errors.ts';
import { normalizeHost } from '../core/net.ts';
import { overrideTable, type ResolveOverride } from '../core/resolve-override.ts';

/**
 * Name resolution for every connection the agent makes by name, with
 * curl-style overrides (`--resolve api.example.test:443:127.0.0.1`, parsed
 * in src/core/resolve-override.ts, shared with the gateway): a name and port
 * an override covers never reaches DNS.
 */

/** Every address of `host` (an IP literal is its own), in the order to try them. Rejects with EGRESSD_ERR_UPSTREAM. */
export type Resolver = (host: string, port: number) => Promise<string[]>;

export function createResolver(entries: readonly ResolveOverride[]): Resolver {
  const overrides = overrideTable(entries);
  return async (host, port) => {
    const name = normalizeHost(host);
    if (isIP(name)) return [name];
    const override = overrides(name, port);
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
