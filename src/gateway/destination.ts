import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { EgressdError, errorMessage } from '../core/errors.ts';
import { vetAddress, type Cidr, type ForbiddenRange } from '../core/ip-ranges.ts';
import { formatHostPort } from '../core/net.ts';
import { overrideTable, type ResolveOverride } from '../core/resolve-override.ts';
import type { Upstream } from '../policy/decision.ts';

/**
 * Where the gateway connects: it resolves names itself (never the IP the
 * application dialled), drops every address in a forbidden range that no
 * rule lists explicitly, and tries the rest in turn, each with a timeout,
 * whatever their family.
 */

export type Resolver = (host: string) => Promise<string[]>;

/** getaddrinfo: /etc/hosts, then DNS; both families, in the resolver's order. */
export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Fixed answers for some names, before the system resolver (`--resolve`,
 * src/core/resolve-override.ts): for labs and tests that need a name to
 * point somewhere without touching DNS. The gateway resolves names, not
 * name-and-port pairs: an entry's port, if any, does not narrow it.
 */
export function resolverWithOverrides(overrides: readonly ResolveOverride[], fallback: Resolver): Resolver {
  const table = overrideTable(overrides);
  return async (host) => table(host) ?? fallback(host);
}

export interface Target {
  address: string;
  port: number;
}

export interface RefusedAddress {
  address: string;
  range: ForbiddenRange;
}

export type DialPlan =
  | { ok: true; targets: Target[]; refused: RefusedAddress[] }
  | { ok: false; reason: 'forbidden_address' | 'unresolvable'; detail: string; refused: RefusedAddress[] };

/**
 * The addresses to try: the ServiceEntry's STATIC endpoints, or its DNS
 * endpoints resolved, or the host resolved (an IP literal as is), minus
 * every forbidden address that `listed` does not cover. `port` is the port
 * to dial where an endpoint does not name its own.
 */
export async function planDial(host: string, port: number, upstream: Upstream | undefined, listed: readonly Cidr[], resolver: Resolver): Promise<DialPlan> {
  const named = upstream && upstream.resolution !== 'NONE' && upstream.endpoints && upstream.endpoints.length > 0 ? upstream.endpoints : [{ address: host, port }];
  const candidates: Target[] = [];
  for (const endpoint of named) {
    if (net.isIP(endpoint.address)) {
      candidates.push(endpoint);
      continue;
    }
    try {
      for (const address of await resolver(endpoint.address)) candidates.push({ address, port: endpoint.port });
    } catch (err) {
      return { ok: false, reason: 'unresolvable', detail: `${endpoint.address}: ${errorMessage(err)}`, refused: [] };
    }
  }
  if (candidates.length === 0) return { ok: false, reason: 'unresolvable', detail: `${host}: no addresses`, refused: [] };
  const targets: Target[] = [];
  const refused: RefusedAddress[] = [];
  for (const target of candidates) {
    const verdict = vetAddress(target.address, listed);
    if (verdict.allowed) targets.push(target);
    else refused.push({ address: target.address, range: verdict.range ?? 'invalid' });
  }
  if (targets.length === 0) {
    const detail = refused.map((r) => `${r.address} (${r.range})`).join(', ');
    return { ok: false, reason: 'forbidden_address', detail: `${host} resolves only to forbidden addresses: ${detail}`, refused };
  }
  return { ok: true, targets, refused };
}

export interface Dialled {
  socket: net.Socket;
  /** `ip:port` that answered. */
  dst: string;
}

/**
 * Connects to the first address that answers, trying each in turn with its
 * own timeout. Rejects with EGRESSD_ERR_UPSTREAM; `context.timedOut` says
 * whether every failure was a timeout (a 504 rather than a 502).
 */
export async function dialFirst(targets: readonly Target[], timeoutMs: number): Promise<Dialled> {
  const failures: string[] = [];
  let allTimedOut = true;
  for (const { address, port } of targets) {
    try {
      return { socket: await dialOne(address, port, timeoutMs), dst: formatHostPort(address, port) };
    } catch (err) {
      const timedOut = err instanceof DialTimeout;
      allTimedOut &&= timedOut;
      failures.push(`${formatHostPort(address, port)}: ${errorMessage(err)}`);
    }
  }
  throw new EgressdError('EGRESSD_ERR_UPSTREAM', `could not connect: ${failures.join('; ')}`, {
    context: { timedOut: allTimedOut && failures.length > 0, failures },
  });
}

class DialTimeout extends Error {}

function dialOne(address: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DialTimeout(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once('error', onError);
  });
}
