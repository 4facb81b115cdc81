/**
 * The upstream exchange against hand-driven UDP servers on loopback: each
 * query leaves from a socket of its own, and only the asked server's answer
 * to the asked question counts. Forgeries come from real sockets.
 */
import test from 'ava';
import dgram from 'node:dgram';
import dnsPacket, { type DecodedPacket } from 'dns-packet';
import { Upstreams } from '../../../src/dns/upstream.ts';

interface Received {
  packet: DecodedPacket;
  from: dgram.RemoteInfo;
}

/** A UDP socket bound on loopback that hands over each datagram it receives, in order. */
async function udpPeer(t: { teardown(fn: () => void): void }, address = '127.0.0.1', port = 0) {
  const socket = dgram.createSocket('udp4');
  const received: Received[] = [];
  const waiters: (() => void)[] = [];
  socket.on('message', (msg, from) => {
    received.push({ packet: dnsPacket.decode(msg), from });
    for (const wake of waiters.splice(0)) wake();
  });
  await new Promise<void>((resolve) => socket.bind(port, address, () => resolve()));
  t.teardown(() => socket.close());
  return {
    port: socket.address().port,
    received,
    /** Resolves once `n` datagrams have arrived (the caller bounds the test, ava's timeout). */
    async count(n: number): Promise<Received[]> {
      while (received.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
      return received.slice(0, n);
    },
    send(packet: Buffer, to: dgram.RemoteInfo): Promise<void> {
      return new Promise((resolve, reject) => socket.send(packet, to.port, to.address, (err) => (err ? reject(err) : resolve())));
    },
  };
}

const ask = (name: string) => (id: number) => dnsPacket.encode({ id, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A' }] });

function answer(query: DecodedPacket, address: string, overrides: { id?: number; name?: string } = {}): Buffer {
  const name = overrides.name ?? query.questions![0]!.name;
  return dnsPacket.encode({
    id: overrides.id ?? query.id,
    type: 'response',
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ name, type: 'A' }],
    answers: [{ name, type: 'A', ttl: 60, data: address }],
  });
}

function addressIn(bytes: Buffer): unknown {
  return (dnsPacket.decode(bytes).answers?.[0] as { data?: unknown } | undefined)?.data;
}

test('each query in flight leaves from a source port of its own', async (t) => {
  const server = await udpPeer(t);
  const upstreams = new Upstreams({ servers: [{ host: '127.0.0.1', port: server.port }], timeoutMs: 10_000, attempts: 1 });
  t.teardown(() => upstreams.close());
  const names = ['a.example.test', 'b.example.test', 'c.example.test', 'd.example.test'];
  const replies = Promise.all(names.map((name) => upstreams.query(ask(name))));
  // Nothing is answered before every query has arrived, so all their sockets are open at once.
  const queries = await server.count(names.length);
  t.is(new Set(queries.map((q) => q.from.port)).size, names.length, `source ports ${queries.map((q) => q.from.port).join(', ')}`);
  for (const q of queries) await server.send(answer(q.packet, '192.0.2.1'), q.from);
  t.deepEqual((await replies).map((r) => addressIn(r.bytes)), names.map(() => '192.0.2.1'));
});

test('answers from another port or address, with another id or for another question are ignored; the genuine one is taken', async (t) => {
  const server = await udpPeer(t);
  const otherPort = await udpPeer(t);
  const otherAddress = await udpPeer(t, '127.0.0.2', server.port);
  const upstreams = new Upstreams({ servers: [{ host: '127.0.0.1', port: server.port }], timeoutMs: 10_000, attempts: 1 });
  t.teardown(() => upstreams.close());
  const reply = upstreams.query(ask('api.example.test'));
  const [q] = await server.count(1);
  // In the order sent: on loopback each arrives (or is dropped) before the next is sent.
  await otherPort.send(answer(q!.packet, '203.0.113.66'), q!.from);
  await otherAddress.send(answer(q!.packet, '203.0.113.67'), q!.from);
  await server.send(answer(q!.packet, '203.0.113.68', { id: (q!.packet.id! + 1) & 0xffff }), q!.from);
  await server.send(answer(q!.packet, '203.0.113.69', { name: 'evil.example.test' }), q!.from);
  await server.send(answer(q!.packet, '192.0.2.10'), q!.from);
  const got = await reply;
  t.is(addressIn(got.bytes), '192.0.2.10');
  t.is(got.server, `127.0.0.1:${server.port}`);
});

test('close() gives up the queries in flight with EGRESSD_ERR_UPSTREAM', async (t) => {
  const server = await udpPeer(t);
  const upstreams = new Upstreams({ servers: [{ host: '127.0.0.1', port: server.port }], timeoutMs: 60_000, attempts: 3 });
  const reply = upstreams.query(ask('api.example.test'));
  await server.count(1);
  upstreams.close();
  const err = await t.throwsAsync(reply);
  t.is((err as { code?: string }).code, 'EGRESSD_ERR_UPSTREAM');
});
