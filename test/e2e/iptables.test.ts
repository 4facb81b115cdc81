import type { ExecutionContext } from 'ava';
import {
  addServerAddress,
  answer,
  createPodInternet,
  execInNetns,
  mustExecInNetns,
  netnsTests,
  probe,
  rawSend,
  startServers,
  REPO_ROOT,
  type PodInternet,
  type ProbeResult,
} from './harness/index.ts';

/**
 * `egressd init` for real: the rules are installed by bin/egressd.js inside a
 * pod namespace, then applications (UID 1000), the agent (UID 1337) and
 * others try to get out to servers in an "internet" namespace. A `tcp`
 * harness server on 15001 stands in for the agent and reports the
 * SO_ORIGINAL_DST it reads; `udp`/`tcp` servers on 15053 stand in for its DNS.
 */
const PREFIX = 'egi-';
const APP = 1000;
const AGENT = 1337;
const e2e = await netnsTests(PREFIX, 'iptables e2e (skipped)');

interface Answer {
  server: string;
  kind: string;
  remoteAddress?: string;
  originalDst?: { address: string; port: number; family: string } | null;
}

async function init(t: ExecutionContext, ns: string, args: string[] = []): Promise<string> {
  const r = await execInNetns(ns, process.execPath, ['bin/egressd.js', 'init', ...args]);
  t.is(r.code, 0, `egressd init ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Pod and internet namespaces, servers on the internet side, the init rules applied with `args`. */
async function podWithRules(t: ExecutionContext, args: string[] = [], options: { fakeAgent?: boolean } = {}): Promise<PodInternet> {
  const topo = await createPodInternet(t, PREFIX);
  await addServerAddress(topo, '192.168.77.10');
  await startServers(t, topo.internet, {
    name: 'internet',
    servers: [
      { kind: 'tcp', host: '::', port: 8080 },
      { kind: 'tcp', host: '::', port: 9090 },
      { kind: 'tcp', host: '::', port: 53 },
      { kind: 'udp', host: '::', port: 53 },
      { kind: 'udp', host: '::', port: 443 },
    ],
  });
  if (options.fakeAgent !== false) {
    await startServers(
      t,
      topo.pod,
      {
        name: 'agent',
        servers: [
          { kind: 'tcp', host: '::', port: 15001 },
          { kind: 'tcp', host: '::', port: 15053 },
          // UDP answers must leave from the address REDIRECT sent the query to, or conntrack
          // cannot map them back to the resolver the application asked: bind loopback, not a wildcard.
          { kind: 'udp', host: '127.0.0.1', port: 15053 },
          { kind: 'udp', host: '::1', port: 15053 },
        ],
      },
      { uid: AGENT },
    );
  }
  await init(t, topo.pod, args);
  return topo;
}

function tcp(topo: PodInternet, host: string, port: number, uid: number): Promise<ProbeResult> {
  return probe(topo.pod, { kind: 'tcp', host, port }, { uid });
}

function udp(topo: PodInternet, host: string, port: number, uid: number): Promise<ProbeResult> {
  return probe(topo.pod, { kind: 'udp', host, port, send: 'q' }, { uid });
}

async function saved(ns: string): Promise<string> {
  const v4 = await mustExecInNetns(ns, 'iptables-save');
  const v6 = await mustExecInNetns(ns, 'ip6tables-save');
  return `${v4}${v6}`.replace(/^#.*\n/gm, '').replace(/\[\d+:\d+\]/g, '');
}

e2e('application TCP is redirected to 15001, where the original destination is readable (IPv4 and IPv6)', async (t) => {
  const topo = await podWithRules(t);
  const v4 = answer<Answer>(await tcp(topo, topo.internetIp, 8080, APP));
  t.is(v4.server, 'agent');
  t.deepEqual(v4.originalDst, { address: topo.internetIp, port: 8080, family: 'IPv4' });
  const v6 = answer<Answer>(await tcp(topo, topo.internetIp6, 8080, APP));
  t.is(v6.server, 'agent');
  t.deepEqual(v6.originalDst, { address: topo.internetIp6, port: 8080, family: 'IPv6' });
  const root = answer<Answer>(await tcp(topo, '192.168.77.10', 9090, 0));
  t.like(root, { server: 'agent', originalDst: { address: '192.168.77.10', port: 9090, family: 'IPv4' } }, 'root is an application too');
});

e2e("the agent's own traffic goes out untouched", async (t) => {
  const topo = await podWithRules(t);
  t.like(answer<Answer>(await tcp(topo, topo.internetIp, 8080, AGENT)), { server: 'internet', remoteAddress: `::ffff:${topo.podIp}`, originalDst: null });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp6, 8080, AGENT)), { server: 'internet', remoteAddress: topo.podIp6 });
  t.like(answer<Answer>(await udp(topo, topo.internetIp, 53, AGENT)), { server: 'internet', kind: 'udp' });
  t.like(answer<Answer>(await udp(topo, topo.internetIp, 443, AGENT)), { server: 'internet', kind: 'udp' });
  t.like(await rawSend(topo.pod, { host: topo.internetIp, protocol: 1 }, { uid: AGENT }), { ok: true });
});

e2e('application DNS (UDP and TCP port 53) is redirected to the agent DNS port', async (t) => {
  const topo = await podWithRules(t);
  t.like(answer<Answer>(await udp(topo, topo.internetIp, 53, APP)), { server: 'agent', kind: 'udp' });
  t.like(answer<Answer>(await udp(topo, topo.internetIp6, 53, APP)), { server: 'agent', kind: 'udp' });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp, 53, APP)), { server: 'agent', originalDst: { address: topo.internetIp, port: 53 } });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp6, 53, APP)), { server: 'agent', originalDst: { address: topo.internetIp6, port: 53 } });
});

e2e('application UDP other than DNS (QUIC) is rejected, over IPv4 and IPv6', async (t) => {
  const topo = await podWithRules(t);
  // A REJECT in OUTPUT fails the send itself: the application learns at once.
  t.like(await udp(topo, topo.internetIp, 443, APP), { ok: false, code: 'EPERM' });
  t.like(await udp(topo, topo.internetIp6, 443, APP), { ok: false, code: 'EPERM' });
  t.like(await udp(topo, '192.168.77.10', 4433, APP), { ok: false, code: 'EPERM' });
});

e2e('--reject-udp=false lets application UDP through', async (t) => {
  const topo = await podWithRules(t, ['--reject-udp=false']);
  t.like(answer<Answer>(await udp(topo, topo.internetIp, 443, APP)), { server: 'internet' });
  t.like(answer<Answer>(await udp(topo, topo.internetIp, 53, APP)), { server: 'agent' }, 'DNS is still redirected');
});

e2e('other protocols (ICMP, SCTP, raw IP) cannot leave around the agent', async (t) => {
  const topo = await podWithRules(t);
  t.like(await rawSend(topo.pod, { host: topo.internetIp, protocol: 1 }, { uid: APP }), { ok: false, code: 'EPERM', stage: 'sendto' });
  t.like(await rawSend(topo.pod, { host: topo.internetIp, protocol: 132 }, { uid: APP }), { ok: false, code: 'EPERM', stage: 'sendto' });
  t.like(await rawSend(topo.pod, { host: topo.internetIp6, protocol: 58 }, { uid: APP }), { ok: false, code: 'EPERM', stage: 'sendto' });
  t.like(await rawSend(topo.pod, { host: '127.0.0.1', protocol: 1 }, { uid: APP }), { ok: true }, 'loopback stays open');
});

e2e('--ipv6=false rejects all application IPv6 while IPv4 is still redirected', async (t) => {
  const topo = await podWithRules(t, ['--ipv6=false']);
  t.like(await tcp(topo, topo.internetIp6, 8080, APP), { ok: false, code: 'ECONNREFUSED' });
  t.like(await udp(topo, topo.internetIp6, 443, APP), { ok: false, code: 'EPERM' });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp6, 8080, AGENT)), { server: 'internet' });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp, 8080, APP)), { server: 'agent' });
  t.false((await mustExecInNetns(topo.pod, 'ip6tables-save', ['-t', 'nat'])).includes('EGRESSD_'));
});

e2e('excluded CIDRs, ports and UIDs go direct; DNS is still redirected for excluded CIDRs', async (t) => {
  const topo = await podWithRules(t, ['--exclude-cidrs', '192.168.77.0/24', '--exclude-ports', '9090', '--exclude-uids', '1500']);
  t.like(answer<Answer>(await tcp(topo, '192.168.77.10', 8080, APP)), { server: 'internet' });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp, 9090, APP)), { server: 'internet' });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp6, 9090, APP)), { server: 'internet' });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp, 8080, 1500)), { server: 'internet' });
  t.like(answer<Answer>(await udp(topo, topo.internetIp, 443, 1500)), { server: 'internet' });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp, 8080, APP)), { server: 'agent' });
  t.like(answer<Answer>(await udp(topo, '192.168.77.10', 53, APP)), { server: 'agent' });
});

e2e('--redirect-dns=false lets DNS through to the resolver it was sent to', async (t) => {
  const topo = await podWithRules(t, ['--redirect-dns=false']);
  t.like(answer<Answer>(await udp(topo, topo.internetIp, 53, APP)), { server: 'internet' });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp, 53, APP)), { server: 'internet' });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp, 8080, APP)), { server: 'agent' });
});

e2e('fail closed: with nothing listening on 15001 application connections are refused, not sent direct', async (t) => {
  const topo = await podWithRules(t, [], { fakeAgent: false });
  t.like(await tcp(topo, topo.internetIp, 8080, APP), { ok: false, code: 'ECONNREFUSED' });
  t.like(await tcp(topo, topo.internetIp6, 8080, APP), { ok: false, code: 'ECONNREFUSED' });
  t.like(answer<Answer>(await tcp(topo, topo.internetIp, 8080, AGENT)), { server: 'internet' });
  // Even with the redirect gone, the guard resets TCP instead of letting it out directly.
  await mustExecInNetns(topo.pod, 'iptables', ['-t', 'nat', '-F', 'EGRESSD_OUTPUT']);
  await mustExecInNetns(topo.pod, 'ip6tables', ['-t', 'nat', '-F', 'EGRESSD_OUTPUT']);
  t.like(await tcp(topo, topo.internetIp, 8080, APP), { ok: false, code: 'ECONNREFUSED' });
  t.like(await tcp(topo, topo.internetIp6, 8080, APP), { ok: false, code: 'ECONNREFUSED' });
});

e2e("the pod's own servers still answer connections from outside", async (t) => {
  const topo = await podWithRules(t);
  await startServers(t, topo.pod, { name: 'pod-app', servers: [{ kind: 'tcp', host: '::', port: 8000 }, { kind: 'udp', host: '::', port: 8001 }] }, { uid: APP });
  t.like(answer<Answer>(await probe(topo.internet, { kind: 'tcp', host: topo.podIp, port: 8000 })), { server: 'pod-app' });
  t.like(answer<Answer>(await probe(topo.internet, { kind: 'tcp', host: topo.podIp6, port: 8000 })), { server: 'pod-app' });
  t.like(answer<Answer>(await probe(topo.internet, { kind: 'udp', host: topo.podIp, port: 8001 })), { server: 'pod-app' });
});

e2e('init is idempotent, and --cleanup removes every rule and chain', async (t) => {
  const topo = await podWithRules(t, ['--exclude-ports', '9090']);
  const once = await saved(topo.pod);
  await init(t, topo.pod, ['--exclude-ports', '9090']);
  t.is(await saved(topo.pod), once, 'a second init changes nothing');

  await init(t, topo.pod, ['--ipv6=false']);
  t.false((await saved(topo.pod)).includes('9090'), 'a re-init with other options replaces the rules');

  const out = await init(t, topo.pod, ['--cleanup']);
  t.regex(out, /ipv4 cleanup applied/);
  t.false((await saved(topo.pod)).includes('EGRESSD'));
  t.like(answer<Answer>(await tcp(topo, topo.internetIp, 8080, APP)), { server: 'internet' });
  t.like(answer<Answer>(await udp(topo, topo.internetIp, 443, APP)), { server: 'internet' });
  t.regex(await init(t, topo.pod, ['--cleanup']), /ipv4 cleanup: nothing to do/);
});

e2e('--backend legacy drives iptables-legacy the same way', async (t) => {
  const topo = await createPodInternet(t, PREFIX);
  const legacy = async (): Promise<string> =>
    `${await mustExecInNetns(topo.pod, 'iptables-legacy-save')}${await mustExecInNetns(topo.pod, 'ip6tables-legacy-save')}`.replace(/^#.*\n/gm, '').replace(/\[\d+:\d+\]/g, '');
  await init(t, topo.pod, ['--backend', 'legacy']);
  const once = await legacy();
  t.regex(once, /-A EGRESSD_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
  await init(t, topo.pod, ['--backend', 'legacy']);
  t.is(await legacy(), once);
  await init(t, topo.pod, ['--backend', 'legacy', '--cleanup']);
  t.false((await legacy()).includes('EGRESSD'));
});

e2e('missing iptables and refused rules fail with EGRESSD_ERR_IPTABLES and iptables’ own message', async (t) => {
  const topo = await createPodInternet(t, PREFIX);
  const missing = await execInNetns(topo.pod, 'env', ['PATH=/nonexistent', process.execPath, 'bin/egressd.js', 'init']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /iptables-save not found.*EGRESSD_ERR_IPTABLES/);

  const notRoot = await execInNetns(topo.pod, process.execPath, ['bin/egressd.js', 'init'], { uid: APP });
  t.is(notRoot.code, 1);
  t.regex(notRoot.stderr, /EGRESSD_ERR_IPTABLES/);
  t.regex(notRoot.stderr, /Permission denied|must be root/i);

  const refused = await execInNetns(topo.pod, process.execPath, [
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    `import { applyRestore, toolsFor } from './src/iptables/restore.ts';
     try { await applyRestore(toolsFor('default', 'ipv4'), '*filter\\n:EGRESSD_GUARD - [0:0]\\n-A EGRESSD_NOPE -j RETURN\\nCOMMIT\\n'); }
     catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`,
  ]);
  const err = JSON.parse(refused.stdout) as { code: string; message: string };
  t.is(err.code, 'EGRESSD_ERR_IPTABLES');
  t.regex(err.message, /line 3 failed/);
  t.false((await mustExecInNetns(topo.pod, 'iptables-save')).includes('EGRESSD_GUARD'), 'a refused restore changes nothing');

  const usage = await execInNetns(topo.pod, process.execPath, ['bin/egressd.js', 'init', '--outbound-port', 'x']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /outbound-port.*EGRESSD_ERR_USAGE/);
});

e2e('iptables/egressd-init.sh enters the namespace named by EGRESSD_NETNS and passes flags and variables on', async (t) => {
  const topo = await createPodInternet(t, PREFIX);
  // Run from the internet namespace, aimed at the pod's: the rules must land in the pod only.
  const r = await execInNetns(topo.internet, 'iptables/egressd-init.sh', ['--exclude-ports', '9090'], {
    env: { ...process.env, EGRESSD_BIN: `${REPO_ROOT}bin/egressd.js`, EGRESSD_NETNS: `/run/netns/${topo.pod}`, EGRESSD_EXCLUDE_UIDS: '1500' },
  });
  t.is(r.code, 0, r.stderr);
  const pod = await saved(topo.pod);
  t.regex(pod, /--dport 9090 -j RETURN/);
  t.regex(pod, /--uid-owner 1500 -j RETURN/);
  t.false((await saved(topo.internet)).includes('EGRESSD'));

  const bad = await execInNetns(topo.internet, 'iptables/egressd-init.sh', [], { env: { ...process.env, EGRESSD_NETNS: '/run/netns/egi-nonexistent' } });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /does not exist/);
});

e2e('--dry-run prints the rules and changes nothing; --help documents the flags', async (t) => {
  const topo = await createPodInternet(t, PREFIX);
  const dry = await init(t, topo.pod, ['--dry-run', '--exclude-uids', '1500']);
  t.regex(dry, /-A EGRESSD_OUTPUT -m owner --uid-owner 1500 -j RETURN/);
  t.false((await saved(topo.pod)).includes('EGRESSD'));
  const help = await init(t, topo.pod, ['--help']);
  for (const env of ['EGRESSD_AGENT_UID', 'EGRESSD_OUTBOUND_PORT', 'EGRESSD_DNS_PORT', 'EGRESSD_EXCLUDE_CIDRS', 'EGRESSD_EXCLUDE_PORTS', 'EGRESSD_EXCLUDE_UIDS', 'EGRESSD_IPV6', 'EGRESSD_REJECT_UDP', 'EGRESSD_REDIRECT_DNS']) {
    t.true(help.includes(env), env);
  }
});
