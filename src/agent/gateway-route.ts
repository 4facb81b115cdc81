import { isIP } from 'node:net';
import type { SecureContext } from 'node:tls';
import { EgressdError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { formatHostPort, parseHostPort } from '../core/net.ts';
import { GatewayPool, type ReplicaAddress, type ReplicaStatus, type TunnelResult } from '../tunnel/pool.ts';
import type { TunnelRequest } from '../tunnel/protocol.ts';
import type { Resolver } from './resolve.ts';
import type { Route, RouteResult, RouteTarget } from './route.ts';
import { TunnelSocket } from './tunnel-socket.ts';

/**
 * The egress gateway route: every allowed connection becomes a tunnel
 * through a GatewayPool (src/tunnel), over mTLS with the workload
 * certificate. The gateway decides again, with the identity in that
 * certificate, and dials on our behalf; its refusal comes back as a value
 * that the pipeline turns into the client's refusal and the audit record's
 * reason. Replicas are the `--egress-gateway` addresses, a name standing for
 * every address it resolves to (a headless Service), resolved again
 * periodically and whenever no replica could carry a tunnel.
 */

export interface GatewayRouteOptions {
  /** `host:port` each; a name is every address it resolves to. */
  addresses: readonly string[];
  /** SPIFFE IDs the gateway may present; empty: its certificate must name the host it was reached by. */
  identities: readonly string[];
  /** The workload certificate now; undefined until the first one is issued. */
  secureContext: () => SecureContext | undefined;
  /** The agent's resolver (`--resolve` applies to the gateway's name too). */
  resolve: Resolver;
  logger: Logger;
  connectTimeoutMs: number;
  /** Resolve the names again this often (default 30 s). */
  rediscoverMs?: number;
  onReplicaDown?: (replica: string) => void;
}

export interface GatewayRoute extends Route {
  /** New workload credentials: new tunnels connect anew with them, open ones finish on theirs. */
  refresh(): void;
  replicas(): ReplicaStatus[];
  close(graceMs: number): Promise<void>;
}

export function gatewayRoute(options: GatewayRouteOptions): GatewayRoute {
  const { logger } = options;
  let pool: GatewayPool | undefined;
  let current = '';
  let problems: string[] = [];
  let discovering: Promise<void> | undefined;
  let closed = false;

  const update = async (): Promise<void> => {
    const found = await discover(options.addresses, options.resolve);
    problems = found.problems;
    for (const problem of problems) logger.warn({ problem }, 'egress gateway: a replica name does not resolve');
    // Nothing resolved: keep the replicas we have rather than none.
    if (found.replicas.length === 0 || closed) return;
    const key = found.replicas.map(addressOf).sort().join(',');
    if (key === current) return;
    current = key;
    if (pool) pool.setAddresses(found.replicas);
    else pool = createPool(found.replicas);
    logger.info({ replicas: found.replicas.map(addressOf) }, 'egress gateway replicas');
  };
  const rediscover = (): Promise<void> => (discovering ??= update().finally(() => (discovering = undefined)));
  const timer = setInterval(() => void rediscover(), options.rediscoverMs ?? 30_000);
  timer.unref();

  const createPool = (replicas: ReplicaAddress[]): GatewayPool => {
    const created = new GatewayPool({
      addresses: replicas,
      secureContext: () => {
        const context = options.secureContext();
        if (context === undefined) throw new EgressdError('EGRESSD_ERR_UPSTREAM', 'no workload certificate yet');
        return context;
      },
      gatewayIdentities: options.identities,
      connectTimeoutMs: options.connectTimeoutMs,
    });
    created.on('replica-down', ({ replica, error, retryInMs, failures }) => {
      options.onReplicaDown?.(replica);
      logger.warn({ replica, err: errorMessage(error), retryInMs, failures }, 'egress gateway replica down; new connections go to the others');
    });
    created.on('replica-up', ({ replica }) => logger.info({ replica }, 'egress gateway replica connected'));
    created.on('failover', ({ from, error }) => logger.warn({ replica: from, err: errorMessage(error) }, 'a tunnel failed on an egress gateway replica; trying the next'));
    return created;
  };

  return {
    name: 'gateway',
    connectsAfterSniff: true,
    async connect(target) {
      if (options.secureContext() === undefined) return { ok: false, reason: 'upstream_unreachable', detail: 'egress gateway: no workload certificate yet' };
      if (!pool) await rediscover();
      if (!pool) return { ok: false, reason: 'upstream_unreachable', detail: `egress gateway: no replica address (${problems.join('; ') || 'none resolved'})` };
      const request = tunnelRequest(target);
      let result: TunnelResult;
      try {
        result = await open(pool, request);
      } catch (err) {
        void rediscover();
        return { ok: false, reason: 'upstream_unreachable', detail: errorMessage(err) };
      }
      return routeResult(result, target);
    },
    refresh: () => pool?.refresh(),
    replicas: () => pool?.replicas() ?? [],
    async close(graceMs) {
      closed = true;
      clearInterval(timer);
      await pool?.close(graceMs);
    },
  };
}

/** A replica that is stopping answers 503: the tunnel is tried on the others before that answer is taken. */
async function open(pool: GatewayPool, request: TunnelRequest): Promise<TunnelResult> {
  let result = await pool.open(request);
  const failovers = [...(result.failovers ?? [])];
  for (let tries = 1; !result.ok && result.status === 503 && tries < pool.replicas().length; tries++) {
    failovers.push(`${result.replica}: 503 ${result.reason ?? 'not ready'}`);
    result = await pool.open(request);
    failovers.push(...(result.failovers ?? []));
  }
  return failovers.length === 0 ? result : { ...result, failovers };
}

function tunnelRequest(target: RouteTarget): TunnelRequest {
  return {
    host: target.host,
    port: target.port,
    protocol: target.protocol ?? 'tcp',
    ...(target.sni === undefined ? {} : { sni: target.sni }),
    ...(target.httpHost === undefined ? {} : { httpHost: target.httpHost }),
    ...(target.originalDst === undefined ? {} : { originalDst: formatHostPort(target.originalDst.host, target.originalDst.port) }),
    ...(target.connectionId === undefined ? {} : { connectionId: target.connectionId }),
  };
}

/** The pool's answer as the pipeline's: 502/504 mean the destination was out of reach, any other refusal is the gateway's decision. */
function routeResult(result: TunnelResult, target: RouteTarget): RouteResult {
  const replica = result.gatewayReplica ?? result.replica;
  const failovers = result.failovers === undefined ? {} : { failovers: result.failovers };
  if (result.ok) {
    const socket = new TunnelSocket(result.stream);
    if (result.decision === 'allow') return { ok: true, socket, replica, ...failovers };
    return { ok: true, socket, replica, ...failovers, denied: { status: 404, reason: result.reason ?? 'denied', rule: result.rule } };
  }
  const why = `${result.status}${result.reason === null ? '' : ` ${result.reason}`}`;
  if (result.status === 502 || result.status === 504) {
    return { ok: false, reason: 'upstream_unreachable', detail: `egress gateway ${replica} could not reach ${formatHostPort(target.host, target.port)} (${why})`, replica, ...failovers };
  }
  return {
    ok: false,
    reason: 'gateway_refused',
    refusal: { status: result.status, reason: result.reason ?? `gateway_status_${result.status}`, rule: result.rule },
    detail: `refused by the egress gateway ${replica} (${why})`,
    replica,
    ...failovers,
  };
}

async function discover(addresses: readonly string[], resolve: Resolver): Promise<{ replicas: ReplicaAddress[]; problems: string[] }> {
  const replicas: ReplicaAddress[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  const add = (replica: ReplicaAddress): void => {
    if (seen.has(addressOf(replica))) return;
    seen.add(addressOf(replica));
    replicas.push(replica);
  };
  for (const text of addresses) {
    const { host, port } = parseHostPort(text);
    if (isIP(host)) {
      add(formatHostPort(host, port));
      continue;
    }
    try {
      for (const ip of await resolve(host, port)) add({ address: formatHostPort(ip, port), servername: host });
    } catch (err) {
      problems.push(errorMessage(err));
    }
  }
  return { replicas, problems };
}

function addressOf(replica: ReplicaAddress): string {
  return typeof replica === 'string' ? replica : replica.address;
}
