/**
 * A keep-alive plain HTTP connection allowed for one host cannot carry a
 * request for another: the server behind the address (a virtual host, a CDN)
 * would answer it by its Host header. Real node:http clients and server on
 * loopback, through the transparent listener (original destination seam),
 * direct route.
 */
import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { Destination } from '../../../src/agent/outbound.ts';
import { serviceEntry, startTestAgent, type TestAgent } from './_harness.ts';

/** A virtual-host server: answers every request with the Host it named; remembers them. */
async function vhostServer(t: ExecutionContext): Promise<{ port: number; hosts: string[] }> {
  const hosts: string[] = [];
  const server = http.createServer((req, res) => {
    hosts.push(req.headers.host ?? '');
    req.resume();
    req.on('end', () => res.end(`site ${req.headers.host}`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => void server.close());
  return { port: (server.address() as net.AddressInfo).port, hosts };
}

async function agentFor(t: ExecutionContext, port: number, mode?: string): Promise<TestAgent> {
  const entry = serviceEntry('api', ['api.example.test'], [{ number: port, protocol: 'HTTP' }], { resolution: 'STATIC', endpoints: ['127.0.0.1'], addresses: ['127.0.0.1/32'] });
  return startTestAgent(t, {
    files: {
      'api.yaml': entry,
      ...(mode === undefined ? {} : { 'sidecar.yaml': `apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\n  namespace: default\n  labels: { egressd.io/mode: ${mode} }\nspec:\n  outboundTrafficPolicy: { mode: REGISTRY_ONLY }\n` }),
    },
    originalDestination: (): Destination => ({ address: '127.0.0.1', port }),
  });
}

/** Requests one after the other on one keep-alive connection (a Node agent with one socket), each host in turn. */
async function sequence(agent: TestAgent, hosts: string[]): Promise<Array<string | Error>> {
  const pool = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const results: Array<string | Error> = [];
  for (const host of hosts) {
    results.push(
      await new Promise<string | Error>((resolve) => {
        const req = http.request({ host: '127.0.0.1', port: agent.outboundPort, path: '/', method: 'POST', headers: { host }, agent: pool }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        });
        req.on('error', resolve);
        req.end('a body to skip');
      }),
    );
  }
  pool.destroy();
  return results;
}

test('requests for the allowed host share the connection; one naming another host is cut before it leaves, and the record says why', async (t) => {
  const server = await vhostServer(t);
  const agent = await agentFor(t, server.port);
  const results = await sequence(agent, ['api.example.test', 'api.example.test', 'evil.example.test']);
  t.deepEqual(results.slice(0, 2), ['site api.example.test', 'site api.example.test']);
  t.true(results[2] instanceof Error, 'the third request gets no answer');
  t.deepEqual(server.hosts, ['api.example.test', 'api.example.test'], 'the server never saw the other host');
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'deny', reason: 'host_mismatch', host: 'api.example.test', route: 'direct', protocol: 'http' });
  t.is(record.error, 'request 3 names host "evil.example.test", not "api.example.test" that the connection was allowed for: the connection was reset');
});

test('two requests in the first packet (pipelined): the second is read before anything is sent', async (t) => {
  const server = await vhostServer(t);
  const agent = await agentFor(t, server.port);
  const socket = net.connect(agent.outboundPort, '127.0.0.1');
  // The agent resets the connection: the client sees ECONNRESET, then the close.
  socket.on('error', () => {});
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await once(socket, 'connect');
  socket.write('GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\nGET / HTTP/1.1\r\nHost: evil.example.test\r\n\r\n');
  await closed;
  t.deepEqual(server.hosts, []);
  t.like(await agent.audit.find(() => true), { decision: 'deny', reason: 'host_mismatch', bytes_sent: 0 });
});

test('in REPORT mode the connection is only reported, not read request by request: all requests go through', async (t) => {
  const server = await vhostServer(t);
  const agent = await agentFor(t, server.port, 'report');
  const results = await sequence(agent, ['api.example.test', 'evil.example.test']);
  t.deepEqual(results, ['site api.example.test', 'site evil.example.test']);
  t.like(await agent.audit.find(() => true), { decision: 'allow', mode: 'REPORT', error: null });
});
