/**
 * The two Node peers of the DNS benchmark, each run as a process of its own
 * (dns-peers.ts bundles this file and starts them, pinned like the others):
 *
 *   node dns-peer.mjs egressd <port> <upstream port>
 *     the agent's DNS proxy as the agent runs it (allowlist *.bench.test,
 *     judged on every query; audit records built and dropped), forwarding
 *     to the origin on loopback;
 *   node dns-peer.mjs echo <port>
 *     a Node UDP server that answers every query with a fixed A record and
 *     does nothing else: the most a Node process answers here.
 *
 * Prints `listening` once it answers.
 */
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

const HOST = '127.0.0.1';

async function egressd(port: number, upstream: number): Promise<void> {
  const { compilePolicy, parseConfigText } = await import('../../src/policy/index.ts');
  const { dnsProxyConfig, startDnsProxy } = await import('../../src/dns/index.ts');
  const { createAuditSink } = await import('../../src/core/audit.ts');
  const { createLogger } = await import('../../src/core/logger.ts');
  const policy = compilePolicy(
    parseConfigText(
      'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: bench}\nspec:\n  hosts: ["*.bench.test"]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: NONE\n',
      'bench.yaml',
    ),
  );
  await startDnsProxy(dnsProxyConfig({ port, bind: [HOST], upstreams: [{ host: HOST, port: upstream }] }), {
    policy: () => policy,
    identity: { namespace: 'default', labels: {} },
    audit: createAuditSink({ component: 'agent', stdout: false }),
    logger: createLogger('dns', { level: 'warn' }),
  });
}

function echo(port: number): Promise<void> {
  // Sends to the IP as is, synchronously, as the proxy's listener does (Node's default lookup defers each send a tick).
  const socket = dgram.createSocket({ type: 'udp4', lookup: (address, _options, callback) => callback(null, address, 4) });
  const answer = dnsPacket.encode({
    id: 0,
    type: 'response',
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ name: 'h0.bench.test', type: 'A' }],
    answers: [{ name: 'h0.bench.test', type: 'A', ttl: 60, data: '192.0.2.1' }],
  });
  socket.on('message', (msg, rinfo) => {
    const reply = Buffer.from(answer);
    msg.copy(reply, 0, 0, 2);
    socket.send(reply, rinfo.port, rinfo.address);
  });
  return new Promise((resolve) => socket.bind(port, HOST, () => resolve()));
}

const [role, port, upstream] = process.argv.slice(2);
if (role === 'egressd') await egressd(Number(port), Number(upstream));
else if (role === 'echo') await echo(Number(port));
else throw new Error(`usage: dns-peer.ts egressd <port> <upstream port> | echo <port> (got ${role})`);
process.stdout.write('listening\n');
