/**
 * The whole egress chain in network namespaces of our own:
 *
 *   pod 10.89.1.2 ── gw 10.89.1.1 | 10.89.2.1 ── internet 10.89.2.2
 *
 * `gw` holds the cluster's side: the control plane (the CA the agent gets its
 * certificate from, by a service-account token) and the egress gateway, with
 * a certificate from the same CA. `gw` does not forward packets, so the pod
 * reaches nothing beyond it. In the pod: the real `egressd init` rules and
 * `egressd agent` as UID 1337 with `--egress-gateway`; the application is curl
 * as UID 1000. In `internet`: echo servers with a certificate from their own
 * CA, which print what each request carried.
 */
import type { ExecutionContext } from 'ava';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenSigningKey, mintServiceAccountToken } from '../../src/control-plane/service-account-token.ts';
import type { AuditRecord } from '../../src/core/audit.ts';
import { CertificateAuthority } from '../../src/pki/certificate-authority.ts';
import { generateWorkloadKey, privateKeyPem } from '../../src/pki/keys.ts';
import { TestCa, writeCredentials } from '../unit/gateway/_pki.ts';
import { netnsTests, addDefaultRoute, connectVeth, createNetns, execInNetns, mustExecInNetns, pollUntil, spawnInNetns, spawnNodeInNetns, TSX_ARGS, waitForListen, type NetnsProcess } from './harness/index.ts';
import { readAuditFile } from '../../src/core/audit.ts';
import { apiEntry } from '../helpers/gateway-allowlist.ts';

const PREFIX = 'egr-';
const BIN = fileURLToPath(new URL('../../bin/egressd.js', import.meta.url));
const ECHO = fileURLToPath(new URL('../unit/gateway/_echo-process.ts', import.meta.url));

const e2e = await netnsTests(PREFIX, 'gateway chain end-to-end tests need root and ip netns');

const GW = { pod: '10.89.1.1', internet: '10.89.2.1' };
const POD_IP = '10.89.1.2';
const INTERNET_IP = '10.89.2.2';
const APP_UID = 1000;
const AGENT_UID = 1337;
const APP_ID = 'spiffe://cluster.local/ns/shop/sa/web';
const GATEWAY_ID = 'spiffe://cluster.local/ns/egressd/sa/egress-gateway';

/**
 * api.example.test, whose port 80 the gateway originates as HTTPS. Its
 * address is private: the gateway's copy lists it (`addresses`), the only
 * way a gateway dials a private address. The agent's copy does not, so that
 * only the name decides there (a listed address would let any name through
 * to it, for the gateway to refuse).
 */
function allowlist(internetCa: string, side: 'agent' | 'gateway'): string {
  return apiEntry({ caCertificates: internetCa, ...(side === 'gateway' ? { addresses: ['10.89.2.0/24'] } : {}) });
}

interface Chain {
  pod: string;
  gw: string;
  internetCaFile: string;
  echo: NetnsProcess;
  gateway: NetnsProcess;
  auditFile: string;
}

async function createChain(t: ExecutionContext): Promise<Chain> {
  const pod = await createNetns(t, PREFIX);
  const gw = await createNetns(t, PREFIX);
  const internet = await createNetns(t, PREFIX);
  await connectVeth({ ns: pod, ifname: 'eth0', addresses: [`${POD_IP}/24`] }, { ns: gw, ifname: 'eth0', addresses: [`${GW.pod}/24`] });
  await connectVeth({ ns: gw, ifname: 'eth1', addresses: [`${GW.internet}/24`] }, { ns: internet, ifname: 'eth0', addresses: [`${INTERNET_IP}/24`] });
  // The pod's way out is the gw namespace, which routes nothing on: only what the gateway carries gets further.
  await addDefaultRoute(pod, GW.pod);
  await mustExecInNetns(gw, 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);

  // The gateway resolves names itself: `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts.
  const etc = join('/etc/netns', gw);
  mkdirSync(etc, { recursive: true });
  t.teardown(() => rmSync(etc, { recursive: true, force: true }));
  writeFileSync(join(etc, 'hosts'), `${INTERNET_IP} api.example.test\n`);

  const dir = mkdtempSync(join(tmpdir(), 'egressd-chain-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const internetCa = await TestCa.create('internet.test');
  const internetCaFile = join(dir, 'internet-ca.pem');
  writeFileSync(internetCaFile, internetCa.rootPem, { mode: 0o644 });
  const server = writeCredentials(join(dir, 'server'), internetCa.issue({ dnsNames: ['api.example.test'] }), internetCa.rootPem);
  const echo = spawnInNetns(t, internet, process.execPath, [
    ...TSX_ARGS,
    ECHO,
    JSON.stringify({ servers: [{ kind: 'https', host: '0.0.0.0', port: 443 }, { kind: 'http', host: '0.0.0.0', port: 80 }], certFile: server.certFile, keyFile: server.keyFile }),
  ]);
  await echo.waitForLine((l) => l.includes('"ready"'));

  // The control plane: a CA of its own in its state directory, tokens signed with its key.
  const state = join(dir, 'control-plane');
  spawnNodeInNetns(t, gw, [BIN, 'control-plane', '--listen', `${GW.pod}:15012`, '--admin-listen', '127.0.0.1:15014', '--state-dir', state, '--log-level', 'warn']);
  await waitForListen(gw, 15012, { timeoutMs: 60_000 });
  const trustBundle = join(state, 'trust-bundle.pem');
  chmodSync(state, 0o755);
  chmodSync(trustBundle, 0o644);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, mintServiceAccountToken(await loadTokenSigningKey({ stateDir: state }), { namespace: 'shop', serviceAccount: 'web', ttlSeconds: 3600 }), { mode: 0o644 });

  // The gateway's certificate, from the same CA (a cluster would mount it from cert-manager or the control plane).
  const ca = CertificateAuthority.fromPem({ certificatePem: readFileSync(join(state, 'ca-cert.pem'), 'utf8'), keyPem: readFileSync(join(state, 'ca-key.pem'), 'utf8') });
  const key = generateWorkloadKey();
  const issued = ca.issue({ publicKeyDer: createPublicKey(key).export({ format: 'der', type: 'spki' }), names: { uris: [GATEWAY_ID] }, ttlSeconds: 3600 });
  const gatewayCreds = writeCredentials(join(dir, 'gateway'), { certPem: issued.chain.slice(0, -1).join(''), keyPem: privateKeyPem(key) }, readFileSync(trustBundle, 'utf8'));

  const config = join(dir, 'config');
  const agentConfig = join(dir, 'agent-config');
  mkdirSync(config, { mode: 0o755 });
  mkdirSync(agentConfig, { mode: 0o755 });
  writeFileSync(join(config, 'allowlist.yaml'), allowlist(internetCaFile, 'gateway'), { mode: 0o644 });
  writeFileSync(join(agentConfig, 'allowlist.yaml'), allowlist(internetCaFile, 'agent'), { mode: 0o644 });
  const gateway = spawnNodeInNetns(t, gw, [
    BIN, 'gateway',
    '--listen', `${GW.pod}:15008`,
    '--admin-listen', '127.0.0.1:15010',
    '--cert', gatewayCreds.certFile,
    '--key', gatewayCreds.keyFile,
    '--trust-bundle', gatewayCreds.trustBundleFile,
    '--config-dir', config,
    '--replica', 'gw-0',
    '--log-level', 'warn',
  ]);
  await waitForListen(gw, 15008);

  const auditDir = join(dir, 'audit');
  mkdirSync(auditDir, { mode: 0o755 });
  chownSync(auditDir, AGENT_UID, AGENT_UID);
  const auditFile = join(auditDir, 'audit.log');
  await mustExecInNetns(pod, process.execPath, [BIN, 'init']);
  const agent = spawnNodeInNetns(
    t,
    pod,
    [BIN, 'agent', '--config-dir', agentConfig, '--audit-log', auditFile, '--namespace', 'shop', '--service-account', 'web', '--peek-timeout-ms', '3000',
      '--ca-address', `${GW.pod}:15012`, '--ca-root-cert', trustBundle, '--token-file', tokenFile,
      '--egress-gateway', `${GW.pod}:15008`, '--gateway-identity', GATEWAY_ID, '--log-level', 'warn'],
    { uid: AGENT_UID },
  );
  await pollUntil(
    'the agent to be ready (listeners, config, certificate)',
    async () => {
      const r = await execInNetns(pod, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', 'http://127.0.0.1:15000/healthz/ready']);
      return r.stdout === '200' ? true : undefined;
    },
    { timeoutMs: 90_000 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; agent stderr: ${agent.stderr().trim()}`);
  });
  return { pod, gw, internetCaFile, echo, gateway, auditFile };
}

function gatewayRecords(chain: Chain): AuditRecord[] {
  return chain.gateway.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as AuditRecord);
}

function curl(chain: Chain, args: readonly string[], uid = APP_UID): ReturnType<typeof execInNetns> {
  return execInNetns(chain.pod, 'curl', ['-sS', '--max-time', '20', ...args], { uid, timeoutMs: 40_000 });
}

e2e('plain HTTP from the pod is originated as HTTPS by the gateway, which the server sees with the workload in XFCC; TLS passes through; nothing leaves the pod any other way', async (t) => {
  const chain = await createChain(t);

  const plain = await curl(chain, ['--resolve', `api.example.test:80:${INTERNET_IP}`, 'http://api.example.test/chain']);
  t.is(plain.code, 0, plain.stderr);
  const seen = JSON.parse(plain.stdout) as { url: string; servername: string | null; headers: Record<string, string | undefined> };
  t.is(seen.url, '/chain');
  t.is(seen.servername, 'api.example.test', 'the server was reached over TLS');
  t.regex(seen.headers['x-forwarded-client-cert'] ?? '', new RegExp(`^By=${GATEWAY_ID};Hash=[0-9a-f]{64};URI=${APP_ID}$`));
  const request = await chain.echo.waitForLine((l) => l.includes('"url":"/chain"'));
  t.like(JSON.parse(request), { kind: 'https', port: 443 });

  const record = await pollUntil('the agent record', async () => (await readAuditFile(chain.auditFile)).find((r) => r.http?.path === '/chain'), { timeoutMs: 30_000 });
  t.like(record, { decision: 'allow', route: 'gateway', replica: 'gw-0', identity: APP_ID, protocol: 'http', host: 'api.example.test', dst: `${INTERNET_IP}:80`, http: { status: 200 } });
  const atGateway = await pollUntil('the gateway record', async () => gatewayRecords(chain).find((r) => r.connection_id === record.connection_id), { timeoutMs: 30_000 });
  t.like(atGateway, { decision: 'allow', identity: APP_ID, namespace: 'shop', replica: 'gw-0', http: { method: 'GET', path: '/chain', status: 200 } });

  const passthrough = await curl(chain, ['--cacert', chain.internetCaFile, '--resolve', `api.example.test:443:${INTERNET_IP}`, 'https://api.example.test/tls']);
  t.is(passthrough.code, 0, passthrough.stderr);
  const tls = JSON.parse(passthrough.stdout) as { url: string; headers: Record<string, string | undefined> };
  t.is(tls.url, '/tls');
  t.is(tls.headers['x-forwarded-client-cert'], undefined, 'the application\'s own TLS is not opened');
  t.like(
    await pollUntil('the TLS record', async () => (await readAuditFile(chain.auditFile)).find((r) => r.sni === 'api.example.test'), { timeoutMs: 30_000 }),
    { decision: 'allow', route: 'gateway', protocol: 'tls', replica: 'gw-0' },
  );

  const denied = await curl(chain, ['-o', '/dev/null', '-w', '%{http_code}', '--resolve', `evil.example.test:80:${INTERNET_IP}`, 'http://evil.example.test/']);
  t.is(denied.stdout, '403', 'the agent still decides first');

  // The agent's own UID is not redirected: straight to the internet it finds no way (gw forwards nothing).
  const direct = await curl(chain, ['--max-time', '3', '-o', '/dev/null', `http://${INTERNET_IP}/`], AGENT_UID);
  t.not(direct.code, 0);
  t.false(chain.echo.lines.some((l) => l.includes('"kind":"http"')), 'the plain HTTP server was never reached');
});
