import test from 'ava';
import net from 'node:net';
import { once } from 'node:events';
import { getOriginalDst, parseSockaddr } from '../../../src/core/original-dst.ts';
import { EgressdError } from '../../../src/core/errors.ts';

function sockaddrIn(address: string, port: number): Buffer {
  const buf = Buffer.alloc(16);
  buf.writeUInt16LE(2, 0);
  buf.writeUInt16BE(port, 2);
  address.split('.').forEach((octet, i) => buf.writeUInt8(Number(octet), 4 + i));
  return buf;
}

function sockaddrIn6(groups: number[], port: number): Buffer {
  const buf = Buffer.alloc(28);
  buf.writeUInt16LE(10, 0);
  buf.writeUInt16BE(port, 2);
  groups.forEach((g, i) => buf.writeUInt16BE(g, 8 + i * 2));
  return buf;
}

test('parses sockaddr_in in network byte order', (t) => {
  t.deepEqual(parseSockaddr(sockaddrIn('10.9.0.5', 443), 16), { address: '10.9.0.5', port: 443, family: 'IPv4' });
  t.deepEqual(parseSockaddr(sockaddrIn('255.0.1.2', 65535), 16), { address: '255.0.1.2', port: 65535, family: 'IPv4' });
});

const v6Cases: Record<string, [number[], string]> = {
  'longest zero run compressed': [[0xfd00, 9, 0, 0, 0, 0, 0, 5], 'fd00:9::5'],
  loopback: [[0, 0, 0, 0, 0, 0, 0, 1], '::1'],
  'no zero run': [[0x2001, 0xdb8, 1, 2, 3, 4, 5, 6], '2001:db8:1:2:3:4:5:6'],
  'a single zero group stays': [[0x2001, 0xdb8, 0, 1, 1, 1, 1, 1], '2001:db8:0:1:1:1:1:1'],
  'first of two equal runs wins': [[1, 0, 0, 2, 3, 0, 0, 4], '1::2:3:0:0:4'],
  'trailing run': [[0xfe80, 1, 0, 0, 0, 0, 0, 0], 'fe80:1::'],
};
for (const [name, [groups, text]] of Object.entries(v6Cases)) {
  test(`parses sockaddr_in6: ${name}`, (t) => {
    t.deepEqual(parseSockaddr(sockaddrIn6(groups, 8443), 28), { address: text, port: 8443, family: 'IPv6' });
    t.is(net.isIPv6(text), true);
  });
}

test('rejects truncated or foreign sockaddrs with a coded error', (t) => {
  for (const [buf, len] of [
    [sockaddrIn('1.2.3.4', 1), 8],
    [sockaddrIn6([0, 0, 0, 0, 0, 0, 0, 1], 1), 16],
    [Buffer.alloc(28), 28],
    [Buffer.alloc(1), 1],
  ] as const) {
    const err = t.throws(() => parseSockaddr(buf, len), { instanceOf: EgressdError });
    t.is(err?.code, 'EGRESSD_ERR_ORIGINAL_DST');
  }
});

test('a connection that was not redirected has no original destination (ENOENT from conntrack)', async (t) => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.teardown(() => client.destroy());
  const [socket] = await accepted;
  t.teardown(() => socket.destroy());
  const err = t.throws(() => getOriginalDst(socket), { instanceOf: EgressdError });
  t.is(err?.code, 'EGRESSD_ERR_ORIGINAL_DST');
  t.regex(err?.message ?? '', /ENOENT|ENOPROTOOPT/);
});

test('a destroyed socket is reported, not a crash', async (t) => {
  const server = net.createServer((s) => s.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const [socket] = (await Promise.all([once(server, 'connection'), once(net.connect((server.address() as net.AddressInfo).port, '127.0.0.1').on('error', () => {}), 'connect')]))[0] as [net.Socket];
  socket.destroy();
  const err = t.throws(() => getOriginalDst(socket), { instanceOf: EgressdError });
  t.is(err?.code, 'EGRESSD_ERR_ORIGINAL_DST');
  t.regex(err?.message ?? '', /file descriptor/);
});
