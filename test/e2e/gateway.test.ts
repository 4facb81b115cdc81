/**
 * The egress gateway end to end, in network namespaces of our own:
 *
 *   pod 10.88.1.2 fd88:1::2 ── gw 10.88.1.1 | 10.88.2.1 fd88:2::1 ── internet 10.88.2.2 fd88:2::2
 *
 * `egressd gateway` processes run in `gw` with the real resolver (its hosts
 * file is /etc/netns/<gw>/hosts, which `ip netns exec` mounts over
 * /etc/hosts); a tunnel client (the agent's GatewayPool) runs in `pod`;
 * echo servers with a certificate from their own CA run in `internet`. The
 * internet addresses are private, so the allowlist lists them explicitly.
 */
import type { ExecutionContext } from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditRecord as GatewayAuditRecord } from '../../src/core/audit.ts';
import { netnsTests, connectVeth, createNetns, execInNetns, pollUntil, spawnInNetns, TSX_ARGS, waitForListen, type NetnsProcess } from './harness/index.ts';
import type { ClientAction, ClientSpec } from '../unit/gateway/_client-process.ts';
import { TestCa, writeCredentials } from '../unit/gateway/_pki.ts';
import { GATEWAY_ID } from '../unit/gateway/_world.ts';
import { apiEntry } from '../helpers/gateway-allowlist.ts';

const PREFIX = 'egg-';
const BIN = fileURLToPath(new URL('../../bin/egressd.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('../unit/gateway/_client-process.ts', import.meta.url));
const ECHO = fileURLToPath(new URL('../unit/gateway/_echo-process.ts', import.meta.url));

const e2e = await netnsTests(PREFIX, 'gateway end-to-end tests need root and ip netns');

const GW = { pod: '10.88.1.1', internet: '10.88.2.1' };
const INTERNET = { v4: '10.88.2.2', v6: 'fd88:2::2' };

interface Lab {
  pod: string;
  gw: string;
  dir: string;
  mesh: TestCa;
  files: { meshCa: string; internetCa: string; client: { certFile: string; keyFile: string }; foreign: { certFile: string; keyFile: string } };
  echo: NetnsProcess;
  startReplica(name: string, port: number): Promise<{ process: NetnsProcess; address: string; adminPort: number }>;
  runClient(spec: Partial<ClientSpec> & { addresses: string[] }, onLine?: (event: ClientEvent) => void): Promise<ClientEvent[]>;
}

interface ClientEvent {
  event: string;
  id?: string;
  ok?: boolean;
  [field: string]: unknown;
}

function allowlist(internetCa: string): string {
  return `${apiEntry({ caCertificates: internetCa, hosts: ['api.example.test', 'api6.example.test'], addresses: ['10.88.2.0/24', 'fd88:2::/64'] })}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: team-only, namespace: team }
spec:
  hosts: [team.example.test]
  exportTo: ["."]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: by-name, namespace: egress }
spec:
  hosts: [metadata.example.test, private.example.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }, { number: 80, name: http, protocol: HTTP }]
`;
}

async function createLab(t: ExecutionContext): Promise<Lab> {
  const pod = await createNetns(t, PREFIX);
  const gw = await createNetns(t, PREFIX);
  const internet = await createNetns(t, PREFIX);
  await connectVeth({ ns: pod, ifname: 'eth0', addresses: ['10.88.1.2/24', 'fd88:1::2/64'] }, { ns: gw, ifname: 'eth0', addresses: [`${GW.pod}/24`, 'fd88:1::1/64'] });
  await connectVeth({ ns: gw, ifname: 'eth1', addresses: [`${GW.internet}/24`, 'fd88:2::1/64'] }, { ns: internet, ifname: 'eth0', addresses: [`${INTERNET.v4}/24`, `${INTERNET.v6}/64`] });

  // The gateway's resolver: `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts.
  const etc = join('/etc/netns', gw);
  mkdirSync(etc, { recursive: true });
  t.teardown(() => rmSync(etc, { recursive: true, force: true }));
  writeFileSync(
    join(etc, 'hosts'),
    [`${INTERNET.v4} api.example.test team.example.test`, `${INTERNET.v6} api6.example.test`, '169.254.169.254 metadata.example.test', '10.0.0.1 private.example.test', ''].join('\n'),
  );

  const dir = mkdtempSync(join(tmpdir(), 'egressd-gateway-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const mesh = await TestCa.create();
  const internetCa = await TestCa.create('internet.test');
  const foreignCa = await TestCa.create();
  const files = {
    meshCa: join(dir, 'mesh-ca.pem'),
    internetCa: join(dir, 'internet-ca.pem'),
    client: writeCredentials(join(dir, 'client'), mesh.workload('default', 'app'), mesh.rootPem),
    foreign: writeCredentials(join(dir, 'foreign'), foreignCa.workload('default', 'app'), mesh.rootPem),
  };
  writeFileSync(files.meshCa, mesh.rootPem);
  writeFileSync(files.internetCa, internetCa.rootPem);
  const gatewayCreds = writeCredentials(join(dir, 'gateway'), mesh.issue({ uris: [GATEWAY_ID] }), mesh.rootPem);
  const server = writeCredentials(join(dir, 'server'), internetCa.issue({ dnsNames: ['api.example.test', 'api6.example.test', 'team.example.test'] }), internetCa.rootPem);
  mkdirSync(join(dir, 'config'));
  writeFileSync(join(dir, 'config', 'allowlist.yaml'), allowlist(files.internetCa));

  const echo = spawnInNetns(t, internet, process.execPath, [
    ...TSX_ARGS,
    ECHO,
    JSON.stringify({ servers: [{ kind: 'https', host: '::', port: 443 }, { kind: 'http', host: '::', port: 80 }], certFile: server.certFile, keyFile: server.keyFile }),
  ]);
  await echo.waitForLine((l) => l.includes('"ready"'));

  return {
    pod,
    gw,
    dir,
    mesh,
    files,
    echo,
    async startReplica(name, port) {
      const adminPort = port + 1;
      const proc = spawnInNetns(t, gw, process.execPath, [
        BIN, 'gateway',
        '--listen', `0.0.0.0:${port}`,
        '--admin-listen', `127.0.0.1:${adminPort}`,
        '--cert', gatewayCreds.certFile,
        '--key', gatewayCreds.keyFile,
        '--trust-bundle', gatewayCreds.trustBundleFile,
        '--config-dir', join(dir, 'config'),
        '--replica', name,
        '--connect-timeout-ms', '2000',
      ]);
      await waitForListen(gw, port);
      return { process: proc, address: `${GW.pod}:${port}`, adminPort };
    },
    async runClient(spec, onLine) {
      const full: ClientSpec = { caFile: files.meshCa, gatewayIdentity: GATEWAY_ID, destinationCaFile: files.internetCa, ...files.client, ...spec };
      const proc = spawnInNetns(t, pod, process.execPath, [...TSX_ARGS, CLIENT, JSON.stringify(full)]);
      const seen = new Set<string>();
      const forward = (line: string): boolean => {
        if (onLine && !seen.has(line)) {
          seen.add(line);
          onLine(JSON.parse(line) as ClientEvent);
        }
        return line.includes('"event":"done"');
      };
      await proc.waitForLine(forward, { timeoutMs: 90_000 });
      return proc.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ClientEvent);
    },
  };
}

function audit(proc: NetnsProcess): GatewayAuditRecord[] {
  return proc.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as GatewayAuditRecord);
}

const result = (events: ClientEvent[], id: string): ClientEvent => {
  const found = events.find((e) => e.id === id);
  if (!found) throw new Error(`no outcome for ${id}: ${JSON.stringify(events)}`);
  return found;
};

const action = (id: string, host: string, port: number, protocol: 'tls' | 'http', exchange: ClientAction['exchange'], path = `/${id}`): ClientAction => ({
  id,
  request: { host, port, protocol, connectionId: id, ...(protocol === 'tls' ? { sni: host } : { httpHost: host }) },
  exchange,
  path,
});

e2e('allowed destinations: TLS passes through, plain HTTP is originated as HTTPS with the caller in x-forwarded-client-cert, IPv6 too', async (t) => {
  const lab = await createLab(t);
  const gwA = await lab.startReplica('gw-a', 15008);
  const events = await lab.runClient({
    addresses: [gwA.address],
    actions: [
      action('tls', 'api.example.test', 443, 'tls', 'tls-get'),
      action('originate', 'api.example.test', 80, 'http', 'http-get'),
      action('v6', 'api6.example.test', 443, 'tls', 'tls-get'),
    ],
  });
  const tls = result(events, 'tls');
  t.like(tls, { ok: true, decision: 'allow', gatewayReplica: 'gw-a', response: { status: 200, body: { url: '/tls', servername: 'api.example.test' } } });
  t.false('x-forwarded-client-cert' in (tls.response as { body: { headers: Record<string, string> } }).body.headers);

  const originated = result(events, 'originate');
  t.like(originated, { ok: true, response: { status: 200, body: { url: '/originate', servername: 'api.example.test' } } });
  const headers = (originated.response as { body: { headers: Record<string, string> } }).body.headers;
  t.regex(headers['x-forwarded-client-cert']!, /;URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/app$/);
  t.regex(headers['x-forwarded-client-cert']!, /^By=spiffe:\/\/cluster\.local\/ns\/egressd\/sa\/gateway;/);
  t.regex(headers['x-request-id']!, /^[0-9a-f-]{36}$/);

  t.like(result(events, 'v6'), { ok: true, response: { status: 200, body: { servername: 'api6.example.test' } } });
  const records = await pollUntil('three audit records', async () => (audit(gwA.process).length >= 3 ? audit(gwA.process) : undefined));
  const tlsRecord = records.find((r) => r.connection_id === 'tls')!;
  t.like(tlsRecord, { decision: 'allow', dst: `${INTERNET.v4}:443`, identity: 'spiffe://cluster.local/ns/default/sa/app', namespace: 'default', replica: 'gw-a' });
  t.regex(tlsRecord.src ?? '', /^10\.88\.1\.2:\d+$/);
  t.like(records.find((r) => r.connection_id === 'originate'), { decision: 'allow', protocol: 'http', http: { method: 'GET', path: '/originate', status: 200 } });
  t.like(records.find((r) => r.connection_id === 'v6'), { decision: 'allow', dst: `[${INTERNET.v6}]:443` });
});

e2e('refused: client certificates from no or another CA at the handshake, a namespace the rule is not exported to, names resolving to metadata or private addresses', async (t) => {
  const lab = await createLab(t);
  const gwA = await lab.startReplica('gw-a', 15008);
  const foreign = await lab.runClient({ addresses: [gwA.address], ...lab.files.foreign, actions: [action('foreign', 'api.example.test', 443, 'tls', 'none')] });
  t.like(result(foreign, 'foreign'), { event: 'error', code: 'EGRESSD_ERR_UPSTREAM' });
  const anonymous = await lab.runClient({ addresses: [gwA.address], certFile: undefined, keyFile: undefined, actions: [action('anonymous', 'api.example.test', 443, 'tls', 'none')] });
  t.like(result(anonymous, 'anonymous'), { event: 'error', code: 'EGRESSD_ERR_UPSTREAM' });
  const stats = await execInNetns(lab.gw, 'curl', ['-sS', `http://127.0.0.1:${gwA.adminPort}/stats/prometheus`]);
  t.regex(stats.stdout, /egressd_gateway_handshake_failures_total\{reason="untrusted_certificate"\} 1/);
  t.regex(stats.stdout, /egressd_gateway_handshake_failures_total\{reason="no_client_certificate"\} 1/);

  const events = await lab.runClient({
    addresses: [gwA.address],
    actions: [
      action('team', 'team.example.test', 443, 'tls', 'none'),
      action('metadata', 'metadata.example.test', 443, 'tls', 'none'),
      action('private', 'private.example.test', 443, 'tls', 'none'),
      action('metadata-http', 'metadata.example.test', 80, 'http', 'http-get', '/latest/meta-data/'),
      action('unlisted', 'unlisted.example.test', 80, 'http', 'http-get'),
    ],
  });
  t.like(result(events, 'team'), { ok: false, status: 403, reason: 'not_exported' });
  t.like(result(events, 'metadata'), { ok: false, status: 403, reason: 'forbidden_address' });
  t.like(result(events, 'private'), { ok: false, status: 403, reason: 'forbidden_address' });
  t.like(result(events, 'metadata-http'), { ok: true, response: { status: 403 } });
  t.like(result(events, 'unlisted'), { ok: true, decision: 'deny', response: { status: 404 } });
  const records = await pollUntil('five audit records', async () => (audit(gwA.process).length >= 5 ? audit(gwA.process) : undefined));
  t.like(records.find((r) => r.connection_id === 'metadata'), { decision: 'deny', reason: 'forbidden_address', dst: null });
  t.regex(records.find((r) => r.connection_id === 'metadata')!.error!, /169\.254\.169\.254 \(link_local\)/);
  t.regex(records.find((r) => r.connection_id === 'private')!.error!, /10\.0\.0\.1 \(private\)/);
  t.like(records.find((r) => r.connection_id === 'unlisted'), { decision: 'deny', reason: 'no_matching_rule', http: { status: 404 } });
  t.deepEqual(lab.echo.lines.filter((l) => l.includes('"request"')), [], 'nothing reached the internet');
});

e2e('two replicas, one killed under load: new tunnels go to the other, and the failure is reported', async (t) => {
  const lab = await createLab(t);
  const gwA = await lab.startReplica('gw-a', 15008);
  const gwB = await lab.startReplica('gw-b', 15018);
  let okBeforeKill = 0;
  let killed = false;
  const events = await lab.runClient(
    { addresses: [gwA.address, gwB.address], load: { action: action('load', 'api.example.test', 80, 'http', 'http-get'), concurrency: 4, afterDown: 40, max: 5000 } },
    (event) => {
      if (event.event === 'result' && event.ok === true && !killed && ++okBeforeKill >= 10) {
        killed = true;
        process.kill(gwA.process.pid, 'SIGKILL');
      }
    },
  );
  t.true(killed, 'the load ran long enough to kill a replica under it');
  const downs = events.filter((e) => e.event === 'replica-down');
  t.true(downs.length >= 1);
  t.true(downs.every((e) => e.replica === gwA.address), JSON.stringify(downs));
  const outcomes = events.filter((e) => e.event === 'result' || e.event === 'error');
  t.true(outcomes.some((e) => e.ok === true && e.replica === gwA.address), 'replica A carried tunnels before it died');
  const afterDown = outcomes.filter((e) => e.startedAfterDown === true);
  t.true(afterDown.length >= 40);
  t.deepEqual(
    afterDown.filter((e) => !(e.ok === true && e.replica === gwB.address && (e.response as { status: number }).status === 200)),
    [],
    'every tunnel opened after the failure went to the surviving replica and worked',
  );
  // The surviving replica's records reach us through its stdout, a moment after the client's own results.
  const allowedAtB = await pollUntil('40 allowed records at the surviving replica', async () => {
    const allowed = audit(gwB.process).filter((r) => r.decision === 'allow');
    return allowed.length >= 40 ? allowed : undefined;
  });
  t.true(allowedAtB.length >= 40);
});
