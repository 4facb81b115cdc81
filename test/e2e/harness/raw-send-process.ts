/**
 * Child process run by probe.ts rawSend: sends one raw IP packet (ICMP echo,
 * or an empty payload of any protocol number) with socket(SOCK_RAW), as an
 * application with CAP_NET_RAW could. Node has no raw sockets, so libc is
 * called through koffi. Prints one JSON RawSendResult line.
 */
import { isIPv6 } from 'node:net';
import koffi from 'koffi';
import type { RawSendResult, RawSendSpec } from './probe.ts';

const spec = JSON.parse(process.argv[2] ?? '{}') as RawSendSpec;
const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
const sendto = libc.func('long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)') as (
  fd: number,
  buf: Buffer,
  len: number,
  flags: number,
  addr: Buffer,
  addrlen: number,
) => number;

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_RAW = 3;

function errnoName(): string {
  const errno = koffi.errno();
  return Object.entries(koffi.os.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
}

function done(result: RawSendResult): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

function checksum(buf: Buffer): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i += 2) sum += (buf[i]! << 8) + (buf[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const v6 = isIPv6(spec.host);
const icmp = v6 ? spec.protocol === 58 : spec.protocol === 1;
const payload = Buffer.alloc(16);
if (icmp) {
  payload.writeUInt8(v6 ? 128 : 8, 0); // echo request
  payload.writeUInt16BE(0x4567, 4);
  payload.writeUInt16BE(1, 6);
  if (!v6) payload.writeUInt16BE(checksum(payload), 2); // the kernel fills it in only for ICMPv6
}
const addr = Buffer.alloc(v6 ? 28 : 16);
addr.writeUInt16LE(v6 ? AF_INET6 : AF_INET, 0);
if (v6) {
  const groups = new URL(`http://[${spec.host}]/`).hostname.slice(1, -1);
  const [head = '', tail = ''] = groups.split('::');
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const all = groups.includes('::') ? [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl] : h;
  all.forEach((g, i) => addr.writeUInt16BE(parseInt(g, 16), 8 + i * 2));
} else {
  spec.host.split('.').forEach((o, i) => addr.writeUInt8(Number(o), 4 + i));
}

const fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW, spec.protocol);
if (fd < 0) done({ ok: false, code: errnoName(), stage: 'socket' });
const sent = Number(sendto(fd, payload, payload.length, 0, addr, addr.length));
if (sent < 0) done({ ok: false, code: errnoName(), stage: 'sendto' });
done({ ok: true, sent });
