import { startAgent } from '../agent/agent.ts';
import { agentConfig } from '../agent/agent-config.ts';
import type { AuditRecord } from '../core/audit.ts';
import { createLogger } from '../core/logger.ts';
import { formatAuditTable } from '../cli/audit-view.ts';
import { httpViaProxy, httpsViaProxy, type Reply } from './clients.ts';
import { startDemoControlPlane } from './control-plane.ts';
import { startExternalApi } from './external-api.ts';
import { GATEWAY_REPLICA, startDemoGateway } from './gateway.ts';
import { REPO, auditCollector, egressctl, heading, reportSurprises, say, showInFull, showResult } from './present.ts';

/**
 * `npm run demo`: everything embedded on loopback, no root, no cluster. The
 * real control plane signs the agent's and the egress gateway's SPIFFE
 * certificates; the agent runs as an explicit proxy over the allowlists of
 * deploy/examples/ and sends what they allow through the gateway (mTLS, one
 * bundle), which passes TLS through or originates it to a loopback server
 * standing in for the external API. Both components' audit records are shown.
 */
const EXAMPLES = `${REPO}deploy/examples`;
const WORKLOAD = { namespace: 'default', serviceAccount: 'checkout', trustDomain: 'cluster.local' } as const;
const WORKLOAD_ID = `spiffe://${WORKLOAD.trustDomain}/ns/${WORKLOAD.namespace}/sa/${WORKLOAD.serviceAccount}`;

interface DemoRequest {
  what: string;
  expected: number;
  send: () => Promise<Reply>;
  /** What else the reply must show; a surprise otherwise. */
  check?: (reply: Reply) => string | undefined;
}

/** The stand-in API's answer: what reached it, including the XFCC header an originating gateway adds. */
function served(reply: Reply): Record<string, unknown> {
  try {
    return JSON.parse(reply.body) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Records are written when connections close: wait for them, bounded, rather than for a time. */
async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; !condition(); ) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

export async function runExplicitDemo(): Promise<number> {
  heading('1. Validate the allowlists (Istio ServiceEntry, DestinationRule, Sidecar)');
  await egressctl(['validate', 'deploy/examples']);

  heading('2. Workload identity: the control plane (CA) signs the agent and the egress gateway SPIFFE certificates');
  const controlPlane = await startDemoControlPlane(WORKLOAD);
  say(`control plane: Istio CreateCertificate API on 127.0.0.1:${controlPlane.grpcPort} (gRPC/TLS), tokens for default/checkout and egressd/egress-gateway minted`);
  const api = await startExternalApi();
  const gateway = await startDemoGateway(controlPlane, api, WORKLOAD.trustDomain);
  const agentAudit = auditCollector();
  const agent = await startAgent(
    agentConfig({
      configDir: EXAMPLES,
      outboundPort: 0,
      proxyPort: 0,
      adminPort: 0,
      namespace: WORKLOAD.namespace,
      auditStdout: false,
      identity: controlPlane.identity,
      gateway: { addresses: [gateway.address], identities: [gateway.spiffeId] },
    }),
    { logger: createLogger('agent', { level: 'warn' }), auditDestination: agentAudit.destination },
  );
  const surprises: string[] = [];
  let requests: DemoRequest[] = [];
  const replies: Reply[] = [];
  const proxy = { host: '127.0.0.1', port: agent.addresses.proxy.port };
  const admin = `http://127.0.0.1:${agent.addresses.admin.port}`;

  try {
    if (!(await agent.identity?.whenReady(15_000).then(() => true, () => false))) surprises.push('the agent got no workload certificate');
    await egressctl(['status', '--admin', admin]);
    say(
      `\nagent: explicit proxy http://127.0.0.1:${proxy.port}, allowlists ${EXAMPLES}, identity ${WORKLOAD_ID}\n` +
        `  --egress-gateway ${gateway.address} --gateway-identity ${gateway.spiffeId}\n` +
        `gateway: ${GATEWAY_REPLICA} on ${gateway.address} (mTLS, trust bundle of the same CA), its allowlist written by the demo to\n` +
        `  ${gateway.allowlistFile}: api.example.test at its loopback stand-in (https :${api.httpsPort}, STATIC endpoint),\n` +
        `  443 passed through, 80 originated as HTTPS (DestinationRule SIMPLE, caCertificates = the demo CA)`,
    );

    heading(`3. The application's requests, with HTTPS_PROXY=http://127.0.0.1:${proxy.port}`);
    requests = [
      {
        what: 'GET https://api.example.test/v1/status   (allowed: ServiceEntry demo-api; agent -> gateway, TLS passed through)',
        expected: 200,
        send: () => httpsViaProxy(proxy, new URL('https://api.example.test/v1/status'), api.pki.caPem),
      },
      {
        what: 'GET http://api.example.test/v1/plain     (allowed; the gateway originates TLS: HTTPS on the wire, XFCC added)',
        expected: 200,
        send: () => httpViaProxy(proxy, new URL('http://api.example.test/v1/plain')),
        check: (reply) => {
          const seen = served(reply);
          const xfcc = String(seen['x-forwarded-client-cert'] ?? '');
          if (seen.served_by !== 'https://api.example.test') return `plain HTTP reached ${String(seen.served_by)}, not the HTTPS server`;
          return xfcc.includes(`URI=${WORKLOAD_ID}`) ? undefined : `x-forwarded-client-cert "${xfcc}" does not carry ${WORKLOAD_ID}`;
        },
      },
      {
        what: 'GET https://exfil.attacker.test/upload   (no ServiceEntry: denied by the agent)',
        expected: 403,
        send: () => httpsViaProxy(proxy, new URL('https://exfil.attacker.test/upload'), api.pki.caPem),
      },
      { what: 'GET http://api.example.test:8080/        (host allowed, port not)', expected: 403, send: () => httpViaProxy(proxy, new URL('http://api.example.test:8080/')) },
    ];
    for (const { what, expected, send, check } of requests) {
      const reply = await send();
      replies.push(reply);
      showResult(what, `HTTP ${reply.status}`, reply.body);
      if (reply.status !== expected) surprises.push(`${what}: HTTP ${reply.status}, expected ${expected}`);
      else if (check?.(reply) !== undefined) surprises.push(`${what}: ${check(reply)}`);
    }

    heading('4. Why was it blocked? egressctl check answers from the same allowlists');
    await egressctl(['check', '--config', 'deploy/examples', '--namespace', 'default', 'exfil.attacker.test:443']);
    await egressctl(['check', '--config', 'deploy/examples', '--namespace', 'default', 'api.example.test:8080']);
  } finally {
    await agent.close();
    await gateway.close();
    await api.close();
    await controlPlane.close();
  }

  // One agent record per connection; the gateway's: one for the TLS tunnel, one per originated HTTP request.
  await waitFor(() => agentAudit.records.length >= requests.length && gateway.records.length >= 2);
  const records: AuditRecord[] = [...agentAudit.records, ...gateway.records];
  heading("5. The audit records: the agent's and the gateway's, JSON lines on their stdout (here as a table)");
  say(formatAuditTable(records, { wide: true }));
  const originatedByAgent = agentAudit.records.find((r) => r.protocol === 'http' && r.port === 80);
  showInFull("The agent's record of the originated request", originatedByAgent);
  showInFull("The gateway's record of it", gateway.records.find((r) => r.connection_id !== null && r.connection_id === originatedByAgent?.connection_id));
  showInFull('What the HTTPS server saw of it', replies[1] ? served(replies[1]) : null);
  showInFull('The denied CONNECT', agentAudit.records.find((r) => r.decision === 'deny'));

  if (agentAudit.records.length !== requests.length) surprises.push(`${agentAudit.records.length} agent audit records for ${requests.length} connections`);
  for (const r of agentAudit.records.filter((r) => r.decision === 'allow')) {
    if (r.route !== 'gateway' || r.replica !== GATEWAY_REPLICA) surprises.push(`agent record for ${r.host}:${r.port}: route ${r.route}, replica ${r.replica}; expected gateway, ${GATEWAY_REPLICA}`);
  }
  if (gateway.records.length !== 2) surprises.push(`${gateway.records.length} gateway audit records, expected 2 (the TLS tunnel, the originated request)`);
  for (const r of gateway.records) if (r.identity !== WORKLOAD_ID) surprises.push(`gateway record for ${r.host}:${r.port}: identity ${r.identity}, expected ${WORKLOAD_ID}`);
  return reportSurprises(surprises);
}
