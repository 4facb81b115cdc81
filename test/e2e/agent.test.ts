import type { ExecutionContext } from 'ava';
import { readAuditFile, type AuditRecord } from '../../src/core/audit.ts';
import { netnsTests, probe, type ProbeResult } from './harness/index.ts';
import { API_HOST, APP_UID, DB_IP, NAMESPACE, TCP_PORT, createAgentPod, curl, nodeClient, waitForRecord, type Agent, type AgentPod } from './agent-pod.ts';

/**
 * The agent's transparent path for real: `egressd init` rules in a pod
 * namespace, `egressd agent` as UID 1337, applications (curl, Node) as UID
 * 1000 reaching real servers in an "internet" namespace (agent-pod.ts).
 * Every outcome is checked twice: what the client got, and the audit
 * record the agent wrote about it, parsed and compared field by field.
 */
const PREFIX = 'ege-';
const e2e = await netnsTests(PREFIX, 'agent e2e (skipped)');

/** Generous: two cores shared with other test files; every wait inside is bounded on a condition. */
const TEST_TIMEOUT_MS = 240_000;

async function podWithAgent(t: ExecutionContext): Promise<{ pod: AgentPod; agent: Agent }> {
  t.timeout(TEST_TIMEOUT_MS);
  const pod = await createAgentPod(t, PREFIX);
  return { pod, agent: await pod.startAgent() };
}

function tcp(pod: AgentPod, host: string, port: number, uid = APP_UID): Promise<ProbeResult> {
  return probe(pod.topo.pod, { kind: 'tcp', host, port, send: 'hello\n', timeoutMs: 15_000 }, { uid });
}

function udp(pod: AgentPod, host: string, port: number): Promise<ProbeResult> {
  return probe(pod.topo.pod, { kind: 'udp', host, port, send: 'quic?', timeoutMs: 15_000 }, { uid: APP_UID });
}

/** What reached the internet servers (requests, TCP connections). */
function arrivals(pod: AgentPod): number {
  return pod.servers.events().filter((e) => e.event === 'request' || e.event === 'connection').length;
}

/** Fields every record of a connection refused by the policy carries. */
const REFUSED = { component: 'agent', decision: 'deny', reason: 'no_matching_rule', rule: null, route: null, bytes_sent: 0, bytes_received: 0, namespace: NAMESPACE, listener: 'outbound' };

e2e('an allowed HTTPS host works, and its record says allow with the SNI', async (t) => {
  const { pod, agent } = await podWithAgent(t);
  const r = await curl(pod, `https://${API_HOST}/hello`, pod.topo.internetIp);
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { server: 'internet', kind: 'https', sni: API_HOST, host: API_HOST, url: '/hello' });

  const record = await waitForRecord(agent, (x) => x.sni === API_HOST);
  t.like(record, {
    component: 'agent',
    decision: 'allow',
    reason: 'allowed_by_rule',
    rule: `ServiceEntry/${NAMESPACE}/demo-api`,
    mode: 'REGISTRY_ONLY',
    would_deny: false,
    host: API_HOST,
    host_source: 'sni',
    sni: API_HOST,
    port: 443,
    dst: `${pod.topo.internetIp}:443`,
    protocol: 'tls',
    http: null,
    route: 'direct',
    namespace: NAMESPACE,
    listener: 'outbound',
    error: null,
  });
  t.true(record.alpn?.includes('http/1.1'), JSON.stringify(record.alpn));
  t.is(record.src?.split(':')[0], pod.topo.podIp);
  t.true(record.bytes_sent > 0 && record.bytes_received > 0, `bytes ${record.bytes_sent}/${record.bytes_received}`);
  t.is((await readAuditFile(agent.auditFile)).length, 1, 'one connection, one record');
});

e2e('an allowed plain HTTP host works, and its record carries method, path and status', async (t) => {
  const { pod, agent } = await podWithAgent(t);
  const r = await curl(pod, `http://${API_HOST}/plain?token=secret`, pod.topo.internetIp);
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { server: 'internet', kind: 'http', host: API_HOST, url: '/plain?token=secret' });

  const record = await waitForRecord(agent, (x) => x.protocol === 'http');
  t.like(record, {
    decision: 'allow',
    reason: 'allowed_by_rule',
    rule: `ServiceEntry/${NAMESPACE}/demo-api`,
    host: API_HOST,
    host_source: 'http',
    sni: null,
    port: 80,
    dst: `${pod.topo.internetIp}:80`,
    route: 'direct',
    error: null,
  });
  t.deepEqual(record.http, { method: 'GET', path: '/plain', status: 200 }, 'the query string stays out of the log');
  t.true(record.bytes_sent > 0 && record.bytes_received > 0);
});

e2e('a host not in the allowlist is refused, over TLS with an alert and over HTTP with a 403 that explains', async (t) => {
  const { pod, agent } = await podWithAgent(t);
  const denied = 'denied.example.test';
  const tls = await curl(pod, `https://${denied}/`, pod.topo.internetIp);
  t.is(tls.code, 35, `curl fails the TLS handshake: ${tls.stderr}`);
  const tlsRecord = await waitForRecord(agent, (x) => x.sni === denied);
  t.like(tlsRecord, { ...REFUSED, host: denied, host_source: 'sni', sni: denied, protocol: 'tls', port: 443, dst: `${pod.topo.internetIp}:443` });

  const http = await nodeClient(pod.topo.pod, { scheme: 'http', address: pod.topo.internetIp, port: 80, host: denied, path: '/nope' });
  if (!http.ok) return t.fail(`HTTP client failed: ${http.code} ${http.message}`);
  t.is(http.status, 403);
  t.is(http.headers['x-egressd-reason'], 'no_matching_rule');
  t.true(http.body.includes(`${denied}:80`), http.body);
  t.true(http.body.includes(`egressctl check --config ${pod.configDir} --namespace ${NAMESPACE} ${denied}:80`), http.body);
  const httpRecord = await waitForRecord(agent, (x) => x.protocol === 'http');
  t.like(httpRecord, { ...REFUSED, host: denied, host_source: 'http', sni: null, port: 80, dst: `${pod.topo.internetIp}:80` });
  t.deepEqual(httpRecord.http, { method: 'GET', path: '/nope', status: 403 });

  t.is(arrivals(pod), 0, 'nothing reached the servers');
});

e2e('raw TCP to an address nothing allows is reset; an address a ServiceEntry lists goes through', async (t) => {
  const { pod, agent } = await podWithAgent(t);
  t.like(await tcp(pod, pod.topo.internetIp, TCP_PORT), { ok: false, code: 'ECONNRESET' });
  const refused = await waitForRecord(agent, (x) => x.host === pod.topo.internetIp);
  t.like(refused, { ...REFUSED, host: pod.topo.internetIp, host_source: 'ip', sni: null, http: null, protocol: 'tcp', port: TCP_PORT, dst: `${pod.topo.internetIp}:${TCP_PORT}` });
  t.is(arrivals(pod), 0, 'nothing reached the server');

  const allowed = await tcp(pod, DB_IP, TCP_PORT);
  if (!allowed.ok) return t.fail(`allowed TCP failed: ${allowed.code} ${allowed.message}`);
  t.like(JSON.parse(allowed.data), { server: 'internet', kind: 'tcp', localAddress: `::ffff:${DB_IP}`, originalDst: null });
  const record = await waitForRecord(agent, (x) => x.host === DB_IP);
  t.like(record, { decision: 'allow', reason: 'allowed_by_rule', rule: `ServiceEntry/${NAMESPACE}/tcp-db`, host_source: 'ip', protocol: 'tcp', dst: `${DB_IP}:${TCP_PORT}`, route: 'direct' });
  t.is(record.bytes_sent, 'hello\n'.length);
  t.true(record.bytes_received > 0);
});

e2e('a Host header the allowlist does not name is refused, even to an allowed address, and so is one that disagrees with the URI', async (t) => {
  const { pod, agent } = await podWithAgent(t);
  const evil = 'evil.example.test';
  const other = await nodeClient(pod.topo.pod, { scheme: 'http', address: pod.topo.internetIp, port: 80, host: evil, path: '/steal' });
  t.like(other, { ok: true, status: 403 });
  t.like(await waitForRecord(agent, (x) => x.host === evil), { ...REFUSED, host_source: 'http', http: { method: 'GET', path: '/steal', status: 403 } });

  // Absolute form names the allowed host; the Host header another: the names must agree.
  const since = (await readAuditFile(agent.auditFile)).length;
  const mismatch = await nodeClient(pod.topo.pod, { scheme: 'http', address: pod.topo.internetIp, port: 80, host: evil, path: `http://${API_HOST}/x` });
  t.like(mismatch, { ok: true, status: 403, headers: { 'x-egressd-reason': 'host_mismatch' } });
  const record = await waitForRecord(agent, () => true, since);
  t.like(record, { ...REFUSED, reason: 'host_mismatch', host: API_HOST, host_source: 'http', http: { method: 'GET', path: '/x', status: 403 } });
  t.is(typeof record.error, 'string');

  t.is(arrivals(pod), 0, 'nothing reached the server');
});

e2e('UDP to 443 (QUIC) fails at once, and IPv6 goes through the agent like IPv4', async (t) => {
  const { pod, agent } = await podWithAgent(t);
  t.like(await udp(pod, pod.topo.internetIp, 443), { ok: false, code: 'EPERM' });
  t.like(await udp(pod, pod.topo.internetIp6, 443), { ok: false, code: 'EPERM' });

  const v6 = `[${pod.topo.internetIp6}]`;
  t.like(await tcp(pod, pod.topo.internetIp6, TCP_PORT), { ok: false, code: 'ECONNRESET' });
  t.like(await waitForRecord(agent, (x) => x.host === pod.topo.internetIp6), { ...REFUSED, host_source: 'ip', protocol: 'tcp', dst: `${v6}:${TCP_PORT}` });
  t.is(arrivals(pod), 0, 'nothing reached the server over IPv6');

  const https = await nodeClient(pod.topo.pod, { scheme: 'https', address: pod.topo.internetIp6, port: 443, host: API_HOST, path: '/v6', caFile: pod.pki.caFile });
  if (!https.ok) return t.fail(`HTTPS over IPv6 failed: ${https.code} ${https.message}`);
  t.like(JSON.parse(https.body), { kind: 'https', sni: API_HOST, url: '/v6' });
  const record = await waitForRecord(agent, (x) => x.sni === API_HOST);
  t.like(record, { decision: 'allow', rule: `ServiceEntry/${NAMESPACE}/demo-api`, host: API_HOST, host_source: 'sni', port: 443, route: 'direct' });
  t.true(record.src?.startsWith(`[${pod.topo.podIp6}]:`), `src ${record.src}`);
  // The route may dial the address the client dialled or the ServiceEntry's endpoint: either way not around the agent.
  t.true([`${v6}:443`, `${pod.topo.internetIp}:443`].includes(record.dst ?? ''), `dst ${record.dst}`);
});

/** SIGKILL: no drain, no cleanup, the way an OOM kill or a crash ends it. */
async function kill(agent: Agent): Promise<void> {
  process.kill(agent.process.pid, 'SIGKILL');
  const status = await agent.process.exited;
  if (status.signal !== 'SIGKILL') throw new Error(`the agent ended with ${JSON.stringify(status)}, not SIGKILL`);
}

async function nothingGetsOut(t: ExecutionContext, pod: AgentPod): Promise<void> {
  const before = arrivals(pod);
  const https = await curl(pod, `https://${API_HOST}/`, pod.topo.internetIp);
  t.is(https.code, 7, `curl cannot connect: ${https.stderr}`);
  const http = await nodeClient(pod.topo.pod, { scheme: 'http', address: pod.topo.internetIp, port: 80, host: API_HOST, path: '/' });
  t.like(http, { ok: false, code: 'ECONNREFUSED' });
  t.like(await tcp(pod, DB_IP, TCP_PORT), { ok: false, code: 'ECONNREFUSED' });
  t.like(await tcp(pod, pod.topo.internetIp6, TCP_PORT), { ok: false, code: 'ECONNREFUSED' });
  t.is(arrivals(pod), before, 'nothing reached the servers');
}

e2e('with the agent killed nothing gets out: allowed destinations included', async (t) => {
  const { pod, agent } = await podWithAgent(t);
  const ok = await curl(pod, `https://${API_HOST}/`, pod.topo.internetIp);
  t.is(ok.code, 0, `works before the kill: ${ok.stderr}`);
  await kill(agent);
  await nothingGetsOut(t, pod);
});

e2e('a restarted agent lets allowed traffic through again and keeps refusing the rest', async (t) => {
  const { pod, agent } = await podWithAgent(t);
  await kill(agent);
  await nothingGetsOut(t, pod);

  const again = await pod.startAgent();
  const r = await curl(pod, `https://${API_HOST}/again`, pod.topo.internetIp);
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { kind: 'https', sni: API_HOST, url: '/again' });
  t.like(await waitForRecord(again, (x) => x.sni === API_HOST), { decision: 'allow', host: API_HOST, route: 'direct' });
  t.like(await tcp(pod, DB_IP, TCP_PORT), { ok: true });

  t.like(await tcp(pod, pod.topo.internetIp, TCP_PORT), { ok: false, code: 'ECONNRESET' });
  const refused: AuditRecord = await waitForRecord(again, (x) => x.host === pod.topo.internetIp);
  t.like(refused, { ...REFUSED, host_source: 'ip' });
});
