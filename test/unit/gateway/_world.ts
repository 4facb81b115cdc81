/**
 * A real gateway on loopback with everything around it made at test time:
 * a mesh CA (agents, gateway), an "internet" CA for the destinations, real
 * HTTPS and HTTP servers that echo what they receive, an allowlist
 * directory, and the audit records parsed as objects. Destinations are on
 * 127.0.0.1, which the gateway refuses unless a rule lists it: the
 * allowlist names them as STATIC endpoints, the explicit listing the
 * gateway honours.
 */
import type { ExecutionContext } from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startGateway, type Gateway, type GatewayConfig } from '../../../src/gateway/gateway.ts';
import { createAuditSink, type AuditRecord as GatewayAuditRecord } from '../../../src/core/audit.ts';
import { GatewayPool, type GatewayPoolOptions } from '../../../src/tunnel/pool.ts';
import { startEcho, type EchoServer } from './_echo.ts';
import { TestCa, writeCredentials } from './_pki.ts';
import { JsonLines } from '../../helpers/json-lines.ts';
import { apiEntry } from '../../helpers/gateway-allowlist.ts';

export type { EchoServer, Seen } from './_echo.ts';

export interface World {
  dir: string;
  mesh: TestCa;
  internet: TestCa;
  https: EchoServer;
  http: EchoServer;
  gateway: Gateway;
  /** `127.0.0.1:port` of the gateway. */
  address: string;
  audit: JsonLines<GatewayAuditRecord>;
  logs: JsonLines<Record<string, unknown>>;
  configDir: string;
  /** The internet CA's root, as a file (DestinationRule caCertificates). */
  internetCaFile: string;
  /** A pool for an agent in `namespace` (default `default`), closed at teardown. */
  pool(namespace?: string, options?: Partial<GatewayPoolOptions>): GatewayPool;
  startGateway(overrides?: Partial<GatewayConfig>, name?: string): Promise<{ gateway: Gateway; address: string; audit: JsonLines<GatewayAuditRecord> }>;
}

export const GATEWAY_ID = 'spiffe://cluster.local/ns/egressd/sa/gateway';

/** The allowlist most tests use; `ports` are the echo servers'. */
export function defaultAllowlist(w: { https: EchoServer; http: EchoServer; internetCaFile: string }): string {
  return `${apiEntry({
    caCertificates: w.internetCaFile,
    resolution: 'STATIC',
    morePorts: [{ number: 8080, name: 'plain', protocol: 'HTTP' }],
    endpoints: [{ address: '127.0.0.1', ports: { https: w.https.port, http: w.https.port, plain: w.http.port } }],
    sni: 'api.example.test',
  })}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: team-only, namespace: team }
spec:
  hosts: [team.example.test]
  exportTo: ["."]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 443, name: tls, protocol: TLS }]
  endpoints: [{ address: 127.0.0.1, ports: { tls: ${w.https.port} } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: metadata-by-name, namespace: egress }
spec:
  hosts: [metadata.example.test, private.example.test, loopback.example.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }, { number: 80, name: http, protocol: HTTP }]
`;
}

export async function startWorld(t: ExecutionContext, options: { allowlist?: (w: World) => string; gateway?: Partial<GatewayConfig> } = {}): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'egressd-gateway-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  t.teardown(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  const [mesh, internet] = await Promise.all([TestCa.create(), TestCa.create('internet.test')]);
  const internetCaFile = join(dir, 'internet-ca.pem');
  writeFileSync(internetCaFile, internet.rootPem);
  const httpsEcho = await startEcho({ leaf: internet.issue({ dnsNames: ['api.example.test', 'team.example.test'] }) });
  cleanups.push(() => httpsEcho.close());
  const httpEcho = await startEcho();
  cleanups.push(() => httpEcho.close());
  const configDir = join(dir, 'config');
  const world = {
    dir,
    mesh,
    internet,
    https: httpsEcho,
    http: httpEcho,
    configDir,
    internetCaFile,
  } as World;
  mkdirSync(configDir);
  writeFileSync(join(configDir, 'allowlist.yaml'), (options.allowlist ?? defaultAllowlist)(world));
  const gatewayLeaf = mesh.issue({ uris: [GATEWAY_ID], dnsNames: ['gateway.egressd.test'] });

  world.startGateway = async (overrides = {}, name = 'gw-0') => {
    const audit = new JsonLines<GatewayAuditRecord>();
    const logs = new JsonLines<Record<string, unknown>>();
    const sink = createAuditSink({ component: 'gateway', stdout: false, destination: audit });
    const config: GatewayConfig = {
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      trustDomain: 'cluster.local',
      replica: name,
      credentials: writeCredentials(join(dir, `creds-${name}`), gatewayLeaf, mesh.rootPem),
      configPaths: [configDir],
      reloadIntervalMs: 0,
      connectTimeoutMs: 2000,
      resolve: [
        { host: 'metadata.example.test', address: '169.254.169.254' },
        { host: 'private.example.test', address: '10.0.0.1' },
        { host: 'loopback.example.test', address: '127.0.0.1' },
      ],
      ...options.gateway,
      ...overrides,
    };
    const gateway = await startGateway(config, { logger: pino({ level: 'debug' }, logs), audit: sink });
    cleanups.push(async () => {
      await gateway.close(0);
      await sink.close();
    });
    if (name === 'gw-0') world.logs = logs;
    return { gateway, address: `127.0.0.1:${gateway.address().port}`, audit };
  };
  const first = await world.startGateway();
  world.gateway = first.gateway;
  world.address = first.address;
  world.audit = first.audit;
  world.pool = (namespace = 'default', poolOptions = {}) => {
    const leaf = mesh.workload(namespace, 'app');
    const pool = new GatewayPool({
      addresses: [world.address],
      secureContext: () => mesh.context(leaf),
      gatewayIdentities: [GATEWAY_ID],
      pingIntervalMs: 0,
      ...poolOptions,
    });
    cleanups.push(() => pool.close(0));
    return pool;
  };
  return world;
}
