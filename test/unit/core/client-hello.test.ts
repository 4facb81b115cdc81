import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseClientHello } from '../../../src/core/client-hello.ts';
import type { ClientHelloFixture } from '../../fixtures/clienthello/regenerate.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/clienthello');
const fixtures = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ name: f, ...(JSON.parse(readFileSync(join(dir, f), 'utf8')) as ClientHelloFixture) }));

/** Cuts the handshake carried by `hello`'s records into new records of `size` bytes, as a client may. */
function reframe(hello: Buffer, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < hello.length; ) {
    parts.push(hello.subarray(offset + 5, offset + 5 + hello.readUInt16BE(offset + 3)));
    offset += 5 + hello.readUInt16BE(offset + 3);
  }
  const handshake = Buffer.concat(parts);
  const records: Buffer[] = [];
  for (let i = 0; i < handshake.length; i += size) {
    const fragment = handshake.subarray(i, i + size);
    records.push(Buffer.from([22, 3, 1, fragment.length >> 8, fragment.length & 0xff]), fragment);
  }
  return Buffer.concat(records);
}

test('at least one fixture from each real client', (t) => {
  for (const client of ['openssl', 'curl', 'tls.connect']) t.true(fixtures.some((f) => f.client.includes(client)), client);
});

for (const fixture of fixtures) {
  const hello = Buffer.from(fixture.hex, 'hex');
  const variants: [string, Buffer][] = [
    ['as recorded', hello],
    ['one record per 100 bytes', reframe(hello, 100)],
    ['one record per 7 bytes', reframe(hello, 7)],
    ['one record per byte', reframe(hello, 1)],
  ];
  for (const [variant, bytes] of variants) {
    test(`${fixture.name} ${variant}: every prefix is incomplete, the whole names SNI and ALPN`, (t) => {
      for (let n = 0; n < bytes.length; n++) {
        const result = parseClientHello(bytes.subarray(0, n));
        if (result.status !== 'incomplete') t.fail(`prefix of ${n}/${bytes.length} bytes: ${JSON.stringify(result)}`);
      }
      t.deepEqual(parseClientHello(bytes), { status: 'complete', sni: fixture.sni, alpn: fixture.alpn, length: bytes.length });
    });
  }

  test(`${fixture.name}: bytes after the hello (the next record) are left alone`, (t) => {
    const ccs = Buffer.from([20, 3, 3, 0, 1, 1]);
    t.deepEqual(parseClientHello(Buffer.concat([hello, ccs])), { status: 'complete', sni: fixture.sni, alpn: fixture.alpn, length: hello.length });
  });

  test(`${fixture.name}: random corruptions never throw`, (t) => {
    let seed = 0x9e3779b9;
    const random = (): number => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return seed;
    };
    for (let i = 0; i < 2000; i++) {
      const copy = Buffer.from(hello);
      copy[5 + (random() % (copy.length - 5))] = random() & 0xff;
      const result = parseClientHello(copy.subarray(0, random() % (copy.length + 1)));
      t.true(['incomplete', 'malformed', 'complete', 'not_tls'].includes(result.status));
    }
  });
}

/** A minimal ClientHello built field by field, to break one field at a time. */
function hello(options: { extensions?: Buffer; handshakeType?: number; sessionIdLength?: number; suites?: Buffer } = {}): Buffer {
  const ext = options.extensions ?? Buffer.alloc(0);
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([options.sessionIdLength ?? 0]),
    Buffer.alloc(options.sessionIdLength ?? 0),
    options.suites ?? Buffer.from([0, 2, 0x13, 0x01]),
    Buffer.from([1, 0]),
    u16(ext.length),
    ext,
  ]);
  const handshake = Buffer.concat([Buffer.from([options.handshakeType ?? 1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([22, 3, 1]), u16(handshake.length), handshake]);
}

function u16(n: number): Buffer {
  return Buffer.from([n >> 8, n & 0xff]);
}

function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(data.length), data]);
}

function sni(...names: string[]): Buffer {
  const list = Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([0]), u16(n.length), Buffer.from(n, 'latin1')])));
  return extension(0, Buffer.concat([u16(list.length), list]));
}

function alpn(...protocols: string[]): Buffer {
  const list = Buffer.concat(protocols.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])));
  return extension(16, Buffer.concat([u16(list.length), list]));
}

test('a minimal hello built here parses, so the cases below break one thing each', (t) => {
  const bytes = hello({ extensions: Buffer.concat([sni('a.example.test'), alpn('h2')]) });
  t.deepEqual(parseClientHello(bytes), { status: 'complete', sni: 'a.example.test', alpn: ['h2'], length: bytes.length });
  t.deepEqual(parseClientHello(hello()), { status: 'complete', sni: null, alpn: null, length: hello().length });
});

const NOT_TLS: Record<string, Buffer> = {
  'an HTTP request': Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
  'an SSH banner': Buffer.from('SSH-2.0-OpenSSH_9.0\r\n'),
  'a 0x16 byte followed by something else than a TLS major version': Buffer.from([22, 1, 0]),
  'an alert record': Buffer.from([21, 3, 3, 0, 2, 2, 40]),
};
for (const [name, bytes] of Object.entries(NOT_TLS)) {
  test(`not TLS: ${name}`, (t) => {
    t.is(parseClientHello(bytes).status, 'not_tls');
  });
}

const MALFORMED: Record<string, Buffer> = {
  'a ServerHello instead of a ClientHello': hello({ handshakeType: 2 }),
  'an unknown record minor version': Buffer.from([22, 3, 9, 0, 4, 1, 0, 0, 0]),
  'an empty first record': Buffer.from([22, 3, 1, 0, 0]),
  'a record longer than 2^14': Buffer.from([22, 3, 1, 0x40, 0x01]),
  'a hello announcing more than the size limit': Buffer.from([22, 3, 1, 0, 4, 1, 0x01, 0x00, 0x01]),
  'an alert record in the middle of the hello': Buffer.concat([reframe(hello(), 10).subarray(0, 15), Buffer.from([21, 3, 3, 0, 2, 2, 40])]),
  'a session id of 33 bytes': hello({ sessionIdLength: 33 }),
  'an odd cipher suite length': hello({ suites: Buffer.from([0, 3, 0x13, 0x01, 0]) }),
  'a server_name with a space': hello({ extensions: sni('bad name.test') }),
  'a server_name with a trailing dot': hello({ extensions: sni('example.test.') }),
  'two host names in server_name': hello({ extensions: sni('a.test', 'b.test') }),
  'the server_name extension twice': hello({ extensions: Buffer.concat([sni('a.test'), sni('a.test')]) }),
  'an empty ALPN protocol': hello({ extensions: alpn('h2', '') }),
  'an extension overrunning the extensions block': hello({ extensions: Buffer.concat([u16(0), u16(50), Buffer.alloc(3)]) }),
  'a second handshake message after the hello in the same record': (() => {
    const h = hello();
    const extra = Buffer.from([20, 0, 0, 0]);
    const out = Buffer.concat([h, extra]);
    out.writeUInt16BE(h.length - 5 + extra.length, 3);
    return out;
  })(),
};
for (const [name, bytes] of Object.entries(MALFORMED)) {
  test(`malformed: ${name}`, (t) => {
    const result = parseClientHello(bytes);
    t.is(result.status, 'malformed', JSON.stringify(result));
  });
}

