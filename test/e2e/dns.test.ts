import type { ExecutionContext } from 'ava';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import type { AuditRecord } from '../../src/core/audit.ts';
import { allocateVips } from '../../src/dns/index.ts';
import {
  addServerAddress,
  answer,
  createPodInternet,
  execInNetns,
  mustExecInNetns,
  netnsTests,
  pollUntil,
  probe,
  spawnInNetns,
  spawnNodeInNetns,
  startServers,
  waitForListen,
  type NetnsProcess,
  type PodInternet,
} from './harness/index.ts';

/**
 * The agent's DNS proxy for real: a pod namespace with `egressd init`'s
 * rules, the real `egressd agent` in it as UID 1337, dnsmasq as the pod's
 * nameserver in the "internet" namespace, and applications as UID 1000
 * resolving with dig and glibc (getent), then connecting. The pod's
 * resolv.conf names dnsmasq, as a pod's names the cluster DNS: the
 * application's queries are redirected to the agent, the agent's own (its
 * upstream, and the names it dials) go to dnsmasq. Answers only the agent
 * gives (NXDOMAIN for a name dnsmasq knows, VIPs) show who answered.
 */
const PREFIX = 'egw-';
const APP = 1000;
const AGENT = 1337;
const ADMIN_PORT = 15000;
/** An address nobody serves: a query sent there is answered all the same, by the agent. */
const NOWHERE = '10.77.0.53';
/** db.example.test (raw TCP on TCP_PORT, resolution NONE) and the address vip.example.test really has. */
const DB_IP = '192.168.77.20';
const VIP_REAL_IP = '192.168.77.30';
const TCP_PORT = 7000;
const e2e = await netnsTests(PREFIX, 'dns e2e (skipped)');

const ALLOWLIST = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: passthrough}
spec:
  hosts: [api.example.test, big.example.test]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: by-name}
spec:
  hosts: [vip.example.test]
  ports: [{number: 443, name: https, protocol: HTTPS}, {number: ${TCP_PORT}, name: tcp, protocol: TCP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec:
  hosts: [db.example.test]
  ports: [{number: ${TCP_PORT}, name: tcp, protocol: TCP}]
  resolution: NONE
`;

interface World {
  topo: PodInternet;
  /** The agent, whose stdout carries the audit records. */
  proxy: NetnsProcess;
  dnsmasq: NetnsProcess;
}

async function world(t: ExecutionContext): Promise<World> {
  const topo = await createPodInternet(t, PREFIX);
  const dir = await mkdtemp(join(tmpdir(), 'egressd-e2e-dns-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'config'));
  await writeFile(join(dir, 'config', 'allowlist.yaml'), ALLOWLIST);
  // What `ip netns exec` shows the pod's processes, the agent included, as /etc/resolv.conf.
  const etc = join('/etc/netns', topo.pod);
  await mkdir(etc, { recursive: true });
  t.teardown(() => rm(etc, { recursive: true, force: true }));
  await writeFile(join(etc, 'resolv.conf'), `nameserver ${topo.internetIp}\noptions timeout:3 attempts:1\n`);
  await addServerAddress(topo, DB_IP);
  await addServerAddress(topo, VIP_REAL_IP);
  await startServers(t, topo.internet, { name: 'internet', servers: [{ kind: 'tcp', host: '0.0.0.0', port: TCP_PORT }] });

  const big = ['a', 'b', 'c'].map((c) => c.repeat(250)).join(',');
  const dnsmasq = spawnInNetns(t, topo.internet, 'dnsmasq', [
    '--no-daemon',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--bind-interfaces',
    `--listen-address=${topo.internetIp}`,
    '--port=53',
    '--local-ttl=60',
    '--local=/example.test/',
    '--local=/example.org/',
    '--local=/cluster.local/',
    '--host-record=api.example.test,192.168.77.10',
    `--host-record=db.example.test,${DB_IP}`,
    `--host-record=vip.example.test,${VIP_REAL_IP}`,
    '--host-record=denied.example.org,192.168.77.66',
    '--host-record=kubernetes.default.svc.cluster.local,10.96.0.1',
    `--txt-record=big.example.test,${big}`,
  ]);
  await waitForListen(topo.internet, 53, { protocol: 'udp' });

  const init = await execInNetns(topo.pod, process.execPath, ['bin/egressd.js', 'init']);
  t.is(init.code, 0, `egressd init: ${init.stderr}`);
  // Every DNS flag at its default (port 15053, loopback, /etc/resolv.conf, cluster.local) but auto-allocation.
  const proxy = spawnNodeInNetns(t, topo.pod, ['bin/egressd.js', 'agent', '--config-dir', join(dir, 'config'), '--dns-auto-allocate', '--log-level', 'warn'], { uid: AGENT });
  await pollUntil(
    'the agent to report ready',
    async () => {
      const r = await execInNetns(topo.pod, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://127.0.0.1:${ADMIN_PORT}/healthz/ready`]);
      return r.stdout === '200' ? true : undefined;
    },
    { timeoutMs: 90_000 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; agent stderr: ${proxy.stderr().trim()}`);
  });
  return { topo, proxy, dnsmasq };
}

/** dig in the pod as the application, through the pod's resolv.conf unless `server` is given. */
async function dig(w: World, args: string[], server?: string): Promise<string> {
  const r = await execInNetns(w.topo.pod, 'dig', ['+tries=1', '+time=3', ...(server === undefined ? [] : [`@${server}`]), ...args], { uid: APP });
  return r.stdout;
}

function status(digOutput: string): string | undefined {
  return /status: (\w+)/.exec(digOutput)?.[1];
}

function audits(w: World): AuditRecord[] {
  return w.proxy.lines.filter((l) => l.startsWith('{"component"')).map((l) => JSON.parse(l) as AuditRecord);
}

async function admin(w: World, path: string): Promise<string> {
  return mustExecInNetns(w.topo.pod, 'curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${ADMIN_PORT}${path}`]);
}

async function metricValue(w: World, name: string, labels: string): Promise<number> {
  const line = (await admin(w, '/stats/prometheus')).split('\n').find((l) => l.startsWith(`${name}{${labels}}`) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

e2e('applications resolve through the proxy: allowed names, VIPs, cluster names; a denied name is NXDOMAIN with an audit record', async (t) => {
  const w = await world(t);
  t.is((await dig(w, ['+short', 'api.example.test'])).trim(), '192.168.77.10');
  t.regex((await execInNetns(w.topo.pod, 'getent', ['ahostsv4', 'api.example.test'], { uid: APP })).stdout, /^192\.168\.77\.10\s+STREAM api\.example\.test/m);
  t.regex((await execInNetns(w.topo.pod, 'getent', ['hosts', 'api.example.test'], { uid: APP })).stdout, /^192\.168\.77\.10\s+api\.example\.test$/m);

  const vip = allocateVips(['vip.example.test']).addressesOf('vip.example.test')!;
  t.is((await dig(w, ['+short', 'vip.example.test'])).trim(), vip.ipv4);
  t.is((await dig(w, ['+short', 'vip.example.test', 'AAAA'])).trim(), vip.ipv6);
  t.regex((await execInNetns(w.topo.pod, 'getent', ['ahostsv4', 'vip.example.test'], { uid: APP })).stdout, new RegExp(`^${vip.ipv4.replace(/\./g, '\\.')}\\s`, 'm'));

  t.is((await dig(w, ['+short', 'kubernetes.default.svc.cluster.local'])).trim(), '10.96.0.1', 'cluster names are forwarded unjudged');

  const denied = await dig(w, ['denied.example.org']);
  t.is(status(denied), 'NXDOMAIN');
  const getent = await execInNetns(w.topo.pod, 'getent', ['ahostsv4', 'denied.example.org'], { uid: APP });
  t.is(getent.code, 2, 'glibc sees the name as not found');
  await w.proxy.waitForLine((l) => l.includes('"host":"denied.example.org"'));
  t.like(
    audits(w).find((r) => r.host === 'denied.example.org'),
    { component: 'agent', decision: 'deny', reason: 'no_matching_rule', mode: 'REGISTRY_ONLY', host_source: 'dns', protocol: 'dns', listener: 'dns', namespace: 'default' },
  );
  t.false(audits(w).some((r) => r.host === 'api.example.test'), 'allowed names write no record');

  t.is(status(await dig(w, ['denied.example.org'], w.topo.internetIp)), 'NXDOMAIN', 'asking the real nameserver by name is redirected to the proxy (dnsmasq knows the name)');
  t.is((await dig(w, ['+short', 'api.example.test'], NOWHERE)).trim(), '192.168.77.10', 'so is asking an address nobody serves');
  t.is((await dig(w, ['+short', 'api.example.test'], 'fd77::53')).trim(), '192.168.77.10', 'over IPv6 too');
});

e2e('an answer too big for UDP: TC to the application, whole over TCP; the proxy asked its upstream over TCP', async (t) => {
  const w = await world(t);
  const udpOnly = await dig(w, ['+noedns', '+ignore', 'big.example.test', 'TXT']);
  t.regex(udpOnly, /flags: qr[a-z ]* tc/);
  t.regex(udpOnly, /ANSWER: 0/);
  t.true((await metricValue(w, 'egressd_dns_upstream_duration_seconds_count', 'transport="tcp"')) >= 1, 'the upstream answer was truncated too, and asked again over TCP');
  const viaTcp = await dig(w, ['+noedns', 'big.example.test', 'TXT']);
  t.regex(viaTcp, /Truncated, retrying in TCP mode/);
  t.is(status(viaTcp), 'NOERROR');
  t.regex(viaTcp, /ANSWER: 1/);
  t.regex(viaTcp, /"a{250}" "b{250}" "c{250}"/);
  t.is(await metricValue(w, 'egressd_dns_truncated_responses_total', ''), 2);
});

/** One packet then a valid query from one socket as the application; the first reply (hex), whichever it answers. */
const EXCHANGE = `
const dgram = require('node:dgram');
const s = dgram.createSocket('udp4');
const timer = setTimeout(() => { console.log('timeout'); process.exit(1); }, 5000);
s.on('message', (m) => { clearTimeout(timer); console.log(m.toString('hex')); s.close(); });
for (const hex of process.argv.slice(1)) s.send(Buffer.from(hex, 'hex'), 53, '${NOWHERE}');
`;

e2e('malformed packets are dropped or FORMERR, counted, and the proxy keeps answering', async (t) => {
  const w = await world(t);
  const good = dnsPacket.encode({ id: 4242, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'api.example.test', type: 'A' }] }).toString('hex');
  const cases: [string, string, 'formerr' | 'drop'][] = [
    ['random bytes', '5c1e1b0f77a3d2c4e81f00aa19bb73e2deadbeef', 'formerr'],
    ['random bytes with the response bit set', '5c1e9b0f77a3d2c4e81f00aa19bb73e2deadbeef', 'drop'],
    ['a header cut short', 'abcd0100', 'formerr'],
    ['a compression loop', 'beef01000001000000000000c00c00010001', 'formerr'],
    ['one byte', '12', 'drop'],
    ['a response', dnsPacket.encode({ id: 9, type: 'response', questions: [{ name: 'a.test', type: 'A' }] }).toString('hex'), 'drop'],
  ];
  for (const [what, hex, expected] of cases) {
    const r = await execInNetns(w.topo.pod, process.execPath, ['-e', EXCHANGE, hex, good], { uid: APP });
    t.is(r.code, 0, `${what}: ${r.stdout} ${r.stderr}`);
    const first = dnsPacket.decode(Buffer.from(r.stdout.trim(), 'hex'));
    if (expected === 'formerr') {
      t.is(first.id, parseInt(hex.slice(0, 4), 16), what);
      t.is((first.flags ?? 0) & 0xf, 1, `${what}: FORMERR`);
    } else {
      t.is(first.id, 4242, `${what}: nothing came back for it`);
    }
  }
  t.is(await metricValue(w, 'egressd_dns_malformed_packets_total', 'transport="udp"'), cases.length);
  t.is((await dig(w, ['+short', 'api.example.test'])).trim(), '192.168.77.10', 'and it still answers');
  t.is(w.proxy.stderr().includes('"level":50'), false, 'no errors logged');
});

e2e('raw TCP to an address the application resolved is decided and audited on the name; a VIP is reached by its host', async (t) => {
  const w = await world(t);
  const before = await probe(w.topo.pod, { kind: 'tcp', host: DB_IP, port: TCP_PORT }, { uid: APP });
  t.false(before.ok, 'nothing named the address yet: judged on the IP, which no ServiceEntry lists');
  await w.proxy.waitForLine((l) => l.includes('"listener":"outbound"'));
  t.like(audits(w).find((r) => r.listener === 'outbound'), { decision: 'deny', reason: 'no_matching_rule', host: DB_IP, host_source: 'ip' });

  t.is((await dig(w, ['+short', 'db.example.test'])).trim(), DB_IP);
  const reached = answer<{ localAddress: string; localPort: number }>(await probe(w.topo.pod, { kind: 'tcp', host: DB_IP, port: TCP_PORT }, { uid: APP }));
  t.like(reached, { localAddress: DB_IP, localPort: TCP_PORT }, 'the server spoke first; the client sent nothing');
  await w.proxy.waitForLine((l) => l.includes('"host":"db.example.test"') && l.includes('"listener":"outbound"'));
  t.like(
    audits(w).find((r) => r.listener === 'outbound' && r.host === 'db.example.test'),
    { decision: 'allow', rule: 'ServiceEntry/default/db', host_source: 'dns', sni: null, protocol: 'tcp', dst: `${DB_IP}:${TCP_PORT}`, route: 'direct' },
  );

  const vip = allocateVips(['vip.example.test']).addressesOf('vip.example.test')!;
  t.regex((await execInNetns(w.topo.pod, 'getent', ['hosts', 'vip.example.test'], { uid: APP })).stdout, new RegExp(`^${vip.ipv6}\\s+vip\\.example\\.test`, 'm'), 'glibc prefers the IPv6 VIP');
  for (const address of [vip.ipv4, vip.ipv6]) {
    const viaVip = answer<{ localAddress: string }>(await probe(w.topo.pod, { kind: 'tcp', host: address, port: TCP_PORT }, { uid: APP }));
    t.is(viaVip.localAddress, VIP_REAL_IP, `${address}: the agent dialled the name (which has only an IPv4 address), never the VIP`);
  }
  await pollUntil('two records for the VIP', async () => (audits(w).filter((r) => r.host === 'vip.example.test' && r.listener === 'outbound').length === 2 ? true : undefined), { timeoutMs: 30_000 });
  for (const record of audits(w).filter((r) => r.host === 'vip.example.test' && r.listener === 'outbound')) {
    t.like(record, { decision: 'allow', rule: 'ServiceEntry/default/by-name', host_source: 'dns', dst: `${VIP_REAL_IP}:${TCP_PORT}` });
  }
});
