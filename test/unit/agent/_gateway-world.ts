/**
 * The agent's gateway route end to end on loopback: a real control plane
 * (the mesh CA, tokens), a real egress gateway whose certificate comes from
 * it (in-process, or the `egressd gateway` binary when a test kills it), a
 * real HTTPS server with a CA of its own ("the internet"), and the allowlists
 * of both sides. Records are parsed as objects.
 */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { loadTokenSigningKey, mintServiceAccountToken } from '../../../src/control-plane/service-account-token.ts';
import { createAuditSink, type AuditRecord } from '../../../src/core/audit.ts';
import { startGateway, type Gateway } from '../../../src/gateway/gateway.ts';
import { CertificateManager, OUTPUT_FILES } from '../../../src/pki/certificate-manager.ts';
import { startEcho, type EchoServer } from '../gateway/_echo.ts';
import { TestCa as InternetCa } from '../gateway/_pki.ts';
import { JsonLines } from '../../helpers/json-lines.ts';
import { apiEntry } from '../../helpers/gateway-allowlist.ts';
import { tempDir } from './_harness.ts';
import { startTestCa, TRUST_DOMAIN, type TestCa } from './_identity.ts';

const BIN = fileURLToPath(new URL('../../../bin/egressd.js', import.meta.url));

export const GATEWAY_ID = `spiffe://${TRUST_DOMAIN}/ns/egressd/sa/gateway`;

export interface RunningGateway {
  name: string;
  /** `host:port` it listens on. */
  address: string;
  audit: JsonLines<AuditRecord>;
  /** In-process only. */
  gateway?: Gateway;
  /** As a process only. */
  child?: ChildProcess;
}

export interface GatewayWorld {
  dir: string;
  ca: TestCa;
  internet: InternetCa;
  https: EchoServer;
  /** The agent's allowlist: what the gateway allows, and `restricted.example.test` exported to every namespace. */
  agentFiles: Record<string, string>;
  startGateway(name: string, listen?: { host: string; port: number }): Promise<RunningGateway>;
  spawnGateway(name: string, listen: { host: string; port: number }): Promise<RunningGateway>;
}

/**
 * api.example.test: 443 passes TLS through, 80 is HTTP the gateway originates
 * as HTTPS (DestinationRule SIMPLE with the internet CA), both served by the
 * echo server. restricted.example.test: the same, exported to `team` only at
 * the gateway, to every namespace at the agent.
 */
function allowlist(echoPort: number, caFile: string, restrictedExportTo: string): string {
  const entry = (name: string, host: string, exportTo: string): string =>
    apiEntry({
      name,
      hosts: [host],
      exportTo,
      resolution: 'STATIC',
      endpoints: [{ address: '127.0.0.1', ports: { https: echoPort, http: echoPort } }],
      sni: host,
      caCertificates: caFile,
    });
  return `${entry('api', 'api.example.test', '"*"')}---\n${entry('restricted', 'restricted.example.test', restrictedExportTo)}`;
}

export async function startGatewayWorld(t: ExecutionContext): Promise<GatewayWorld> {
  const dir = tempDir(t, 'egressd-gateway-route-');
  const ca = await startTestCa(t);
  const internet = await InternetCa.create('internet.test');
  const https = await startEcho({ leaf: internet.issue({ dnsNames: ['api.example.test', 'restricted.example.test'] }) });
  t.teardown(() => https.close());
  const caFile = join(dir, 'internet-ca.pem');
  writeFileSync(caFile, internet.rootPem);
  const gatewayConfig = join(dir, 'gateway-config');
  mkdirSync(gatewayConfig);
  writeFileSync(join(gatewayConfig, 'allowlist.yaml'), allowlist(https.port, caFile, 'team'));

  // The gateway's own workload certificate, from the same control plane, written where --cert and --key read it.
  const tokenFile = join(dir, 'gateway-token');
  await writeFile(tokenFile, mintServiceAccountToken(await loadTokenSigningKey({ stateDir: ca.stateDir }), { namespace: 'egressd', serviceAccount: 'gateway', ttlSeconds: 3600 }));
  const credentials = join(dir, 'gateway-identity');
  const manager = new CertificateManager({
    identity: { trustDomain: TRUST_DOMAIN, namespace: 'egressd', serviceAccount: 'gateway' },
    ca: { address: `127.0.0.1:${ca.cp.grpcPort}`, serverName: 'localhost' },
    tokenFile,
    trustBundleFile: join(ca.stateDir, 'trust-bundle.pem'),
    validitySeconds: 3600,
    outputDir: credentials,
  });
  manager.start();
  await manager.whenReady(15_000);
  await manager.stop();
  const files = { certFile: join(credentials, OUTPUT_FILES.chain), keyFile: join(credentials, OUTPUT_FILES.key), trustBundleFile: join(credentials, OUTPUT_FILES.bundle) };

  return {
    dir,
    ca,
    internet,
    https,
    agentFiles: { 'allowlist.yaml': allowlist(https.port, caFile, '"*"') },
    async startGateway(name, listen = { host: '127.0.0.1', port: 0 }) {
      const audit = new JsonLines<AuditRecord>();
      const sink = createAuditSink({ component: 'gateway', stdout: false, destination: audit });
      const gateway = await startGateway(
        { listen, trustDomain: TRUST_DOMAIN, replica: name, credentials: files, configPaths: [gatewayConfig], reloadIntervalMs: 0, connectTimeoutMs: 2000 },
        { logger: pino({ level: 'silent' }), audit: sink },
      );
      t.teardown(async () => {
        await gateway.close(0);
        await sink.close();
      });
      return { name, address: `${listen.host}:${gateway.address().port}`, audit, gateway };
    },
    async spawnGateway(name, listen) {
      const child = spawn(
        process.execPath,
        [BIN, 'gateway', '--listen', `${listen.host}:${listen.port}`, '--admin-listen', `${listen.host}:0`, '--cert', files.certFile, '--key', files.keyFile,
          '--trust-bundle', files.trustBundleFile, '--trust-domain', TRUST_DOMAIN, '--config-dir', gatewayConfig, '--replica', name, '--reload-interval-ms', '0'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      t.teardown(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      // Audit records on stdout, logs on stderr; "gateway ready" names the port chosen.
      const audit = new JsonLines<AuditRecord>();
      child.stdout!.pipe(audit);
      const ready = await new Promise<{ listen: string }>((resolve, reject) => {
        let text = '';
        child.stderr!.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          const line = text.split('\n').find((l) => l.includes('"gateway ready"'));
          if (line) resolve(JSON.parse(line) as { listen: string });
        });
        child.once('exit', (code) => reject(new Error(`gateway ${name} exited ${code}: ${text}`)));
      });
      return { name, address: ready.listen, audit, child };
    },
  };
}
