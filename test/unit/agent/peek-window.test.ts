/**
 * How long the transparent path waits for a client's first bytes: the
 * choice itself against a real compiled policy, then the transparent
 * listener on loopback (the original-destination seam, real servers).
 */
import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import type { Destination } from '../../../src/agent/outbound.ts';
import { peekWindow, type PeekSettings } from '../../../src/agent/peek-window.ts';
import { compilePolicy, parseConfigText } from '../../../src/policy/index.ts';
import { echoServer, serviceEntry, startTestAgent, tlsEchoServer, tlsExchange } from './_harness.ts';

const policy = compilePolicy(
  parseConfigText(
    [
      serviceEntry('vault', ['vault.internal'], [{ number: 8200, protocol: 'TLS' }], { addresses: ['10.50.0.0/16'] }),
      serviceEntry('db', ['db.internal'], [{ number: 5432, protocol: 'TCP' }], { addresses: ['10.40.8.0/24'] }),
      serviceEntry('api', ['api.example.test'], [{ number: 443, protocol: 'TLS' }, { number: 80, protocol: 'HTTP' }, { number: 27017, protocol: 'MONGO' }]),
      serviceEntry('hidden', ['hidden.example.test'], [{ number: 443, protocol: 'TLS' }], { namespace: 'other' }).replace('exportTo: ["*"]', 'exportTo: ["."]'),
    ].join('---\n'),
    'test.yaml',
  ),
);
const SETTINGS: PeekSettings = { identity: { namespace: 'shop', labels: {} }, peekTimeoutMs: 200, sniffTimeoutMs: 5000 };
const LONG = SETTINGS.sniffTimeoutMs;
const SHORT = SETTINGS.peekTimeoutMs;

const CASES: Record<string, { dst: Destination; name?: string; expect: number }> = {
  'a port declared TLS on a CIDR holding the address: long': { dst: { address: '10.50.3.4', port: 8200 }, expect: LONG },
  'a port declared TCP on the address: short (server-first protocols get their banner)': { dst: { address: '10.40.8.9', port: 5432 }, expect: SHORT },
  'an address and port nothing declares: short': { dst: { address: '192.0.2.10', port: 443 }, expect: SHORT },
  'the TLS CIDR on a port it does not list: short': { dst: { address: '10.50.3.4', port: 8201 }, expect: SHORT },
  'a port declared TLS for the name DNS gave the address: long': { dst: { address: '192.0.2.10', port: 443 }, name: 'api.example.test', expect: LONG },
  'a port declared HTTP for the DNS name: long': { dst: { address: '192.0.2.10', port: 80 }, name: 'api.example.test', expect: LONG },
  'a port declared MONGO for the DNS name: short': { dst: { address: '192.0.2.10', port: 27017 }, name: 'api.example.test', expect: SHORT },
  'a DNS name nothing lists, on an address declared TLS: long': { dst: { address: '10.50.3.4', port: 8200 }, name: 'unlisted.example.test', expect: LONG },
  'a TLS port not exported to the workload declares nothing to it: short': { dst: { address: '192.0.2.10', port: 443 }, name: 'hidden.example.test', expect: SHORT },
};

for (const [title, { dst, name, expect }] of Object.entries(CASES)) {
  test(title, (t) => t.is(peekWindow(policy, dst, name, SETTINGS), expect));
}

test('no configuration loaded yet: short', (t) => {
  t.is(peekWindow(undefined, { address: '10.50.3.4', port: 8200 }, 'api.example.test', SETTINGS), SHORT);
});

/**
 * An agent with a short peek and a sniff timeout far beyond the test's own
 * timeout: a server-first connection given the long wait would never see
 * its banner, and a slow client given the short one would be judged on its IP.
 */
function transparentAgent(t: ExecutionContext, port: number, file: string) {
  return startTestAgent(t, {
    files: { 'entry.yaml': file },
    originalDestination: () => ({ address: '127.0.0.1', port }),
    config: { namespace: 'shop', peekTimeoutMs: 50, sniffTimeoutMs: 600_000 },
  });
}

test('a TLS client that starts long after the peek, to an address declared TLS, is still decided by its SNI', async (t) => {
  const server = await tlsEchoServer(t);
  const agent = await transparentAgent(t, server.port, serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'TLS' }], { addresses: ['127.0.0.1/32'] }));
  const socket = net.connect({ host: '127.0.0.1', port: agent.outboundPort });
  t.teardown(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  // The scenario, not a wait for a condition: a loaded node delays the ClientHello well past the 50 ms peek.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const { reply } = await tlsExchange({ socket, servername: 'api.example.test', message: 'ping' });
  t.is(reply, 'hello api.example.test http/1.1: ping');
  t.like(await agent.audit.find(() => true), { decision: 'allow', rule: 'ServiceEntry/default/api', host: 'api.example.test', host_source: 'sni', sni: 'api.example.test', protocol: 'tls' });
});

test('a server that speaks first on a port declared TCP still gets its banner after the short peek', async (t) => {
  const server = await echoServer(t, '220 mail ready\r\n');
  const agent = await transparentAgent(t, server.port, serviceEntry('mail', ['mail.internal'], [{ number: server.port, protocol: 'TCP' }], { addresses: ['127.0.0.1/32'] }));
  const socket = net.connect({ host: '127.0.0.1', port: agent.outboundPort });
  t.teardown(() => socket.destroy());
  const banner = await new Promise<string>((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString())));
  t.is(banner, '220 mail ready\r\n');
  socket.end();
  t.like(await agent.audit.find(() => true), { decision: 'allow', rule: 'ServiceEntry/default/mail', host: '127.0.0.1', host_source: 'ip', protocol: 'tcp', sni: null });
});
