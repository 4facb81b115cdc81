import dnsPacket from 'dns-packet';
import { parseIp } from '../core/ip-ranges.ts';
import { encodeHeader, encodeOpt, FLAG, HEADER_BYTES, RCODE, readOpt, scanMessage } from './wire.ts';

/**
 * The codec glue: a client's bytes into a Query (decoded by dns-packet,
 * checked against the byte layout), and the answers the proxy makes itself
 * back into bytes. A packet that cannot be understood never throws past
 * here: it becomes a FORMERR (when its id can be read) or is dropped.
 */

/** What we tell clients and upstreams we can receive over UDP (the DNS flag day 2020 size). */
export const PROXY_UDP_SIZE = 1232;
/** Options that belong to one hop (RFC 7873 cookies, RFC 7828 keepalive, RFC 7830 padding): never forwarded. */
const HOP_BY_HOP_OPTIONS = new Set([10, 11, 12]);
const DNSSEC_OK = 0x8000;
/** BADVERS is rcode 16: 1 in the OPT's upper bits, 0 in the header. */
const BADVERS_EXTENDED = 1;
const MAX_UDP_PAYLOAD = 65535;

export interface Edns {
  udpSize: number;
  version: number;
  dnssecOk: boolean;
  /** The client's options minus the hop-by-hop ones: forwarded upstream as they came. */
  options: readonly { code: number; data: Buffer }[];
}

export interface Query {
  id: number;
  /** The header's flags word as sent. */
  flags: number;
  /** Lower case, no trailing dot (`.` is the root): what policy, cache and attribution use. */
  name: string;
  /** `A`, `AAAA`, ... or dns-packet's `UNKNOWN_65`. */
  type: string;
  class: string;
  /** The question exactly as sent (letter case kept): echoed in answers and forwarded upstream. */
  questionBytes: Buffer;
  edns: Edns | undefined;
}

export type Parsed =
  | { kind: 'query'; query: Query }
  /** Answer `reply` and go on; `malformed` when the packet itself was broken (FORMERR). */
  | { kind: 'reject'; reply: Buffer; rcode: 'FORMERR' | 'NOTIMP' | 'BADVERS'; malformed: boolean; why: string }
  /** Nothing sensible to answer: no readable id, or a response sent to us. */
  | { kind: 'drop'; why: string };

export function parseQuery(buf: Buffer): Parsed {
  if (buf.length < 2) return { kind: 'drop', why: 'no header id' };
  if (buf.length >= 3 && (buf[2]! & 0x80) !== 0) return { kind: 'drop', why: 'a response, not a query' };
  const id = buf.readUInt16BE(0);
  const flags = buf.length >= 4 ? buf.readUInt16BE(2) : buf.length === 3 ? buf[2]! << 8 : 0;
  const formerr = (why: string): Parsed => ({ kind: 'reject', reply: headerOnly(id, flags, RCODE.FORMERR), rcode: 'FORMERR', malformed: true, why });
  let layout;
  let decoded;
  try {
    layout = scanMessage(buf);
    decoded = dnsPacket.decode(buf);
  } catch (err) {
    return formerr(err instanceof Error ? err.message : 'undecodable');
  }
  if (decoded.questions?.length !== 1) return formerr(`${decoded.questions?.length ?? 0} questions; exactly one is supported`);
  const questionBytes = buf.subarray(HEADER_BYTES, layout.questionEnd);
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) return { kind: 'reject', reply: headerOnly(id, flags, RCODE.NOTIMP, questionBytes), rcode: 'NOTIMP', malformed: false, why: `opcode ${opcode}` };
  let edns: Edns | undefined;
  if (layout.opt !== -1) {
    let opt;
    try {
      opt = readOpt(buf, layout.opt);
    } catch (err) {
      return formerr((err as Error).message);
    }
    if (opt.version !== 0) {
      const reply = Buffer.concat([encodeHeader(id, responseFlags(flags, RCODE.NOERROR), 1, 0, 0, 1), questionBytes, encodeOpt(PROXY_UDP_SIZE, 0, [], BADVERS_EXTENDED)]);
      return { kind: 'reject', reply, rcode: 'BADVERS', malformed: false, why: `EDNS version ${opt.version}` };
    }
    edns = {
      udpSize: opt.udpSize,
      version: opt.version,
      dnssecOk: (opt.flags & DNSSEC_OK) !== 0,
      options: opt.options.filter((o) => !HOP_BY_HOP_OPTIONS.has(o.code)),
    };
  }
  const question = decoded.questions[0]!;
  const name = question.name === '.' ? '.' : question.name.toLowerCase();
  return { kind: 'query', query: { id, flags, name, type: question.type, class: question.class ?? 'IN', questionBytes, edns } };
}

/** The largest UDP answer this client takes: 512 without EDNS (RFC 1035), its own size with. */
export function clientUdpLimit(query: Query): number {
  return query.edns === undefined ? 512 : Math.min(MAX_UDP_PAYLOAD, Math.max(512, query.edns.udpSize));
}

/** Flags of an answer to a query with `flags`: QR, RA, the query's opcode, RD and CD, and the rcode. */
export function responseFlags(flags: number, rcode: number, authoritative = false): number {
  return FLAG.QR | FLAG.RA | (flags & (0x7800 | FLAG.RD | FLAG.CD)) | (authoritative ? FLAG.AA : 0) | (rcode & 0xf);
}

function headerOnly(id: number, flags: number, rcode: number, questionBytes?: Buffer): Buffer {
  const header = encodeHeader(id, responseFlags(flags, rcode), questionBytes === undefined ? 0 : 1, 0, 0, 0);
  return questionBytes === undefined ? header : Buffer.concat([header, questionBytes]);
}

function optFor(query: Query): Buffer | undefined {
  return query.edns === undefined ? undefined : encodeOpt(PROXY_UDP_SIZE, query.edns.dnssecOk ? DNSSEC_OK : 0, []);
}

/** An answer the proxy makes itself: rcode, and A/AAAA records for the asked name (a pointer to the question). */
export function localAnswer(query: Query, rcode: number, addresses: readonly string[], ttl: number): Buffer {
  const records = addresses.map((address) => addressRecord(address, ttl));
  const opt = optFor(query);
  const header = encodeHeader(query.id, responseFlags(query.flags, rcode, rcode === RCODE.NOERROR), 1, records.length, 0, opt === undefined ? 0 : 1);
  return Buffer.concat([header, query.questionBytes, ...records, ...(opt === undefined ? [] : [opt])]);
}

function addressRecord(address: string, ttl: number): Buffer {
  const ip = parseIp(address);
  if (ip === undefined) throw new TypeError(`not an IP address: ${address}`);
  const size = ip.family === 4 ? 4 : 16;
  const out = Buffer.alloc(12 + size);
  out.writeUInt16BE(0xc000 | HEADER_BYTES, 0);
  out.writeUInt16BE(ip.family === 4 ? 1 : 28, 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(ttl, 6);
  out.writeUInt16BE(size, 10);
  for (let i = 0; i < size; i++) out[12 + i] = Number((ip.value >> BigInt(8 * (size - 1 - i))) & 0xffn);
  return out;
}

/** What goes to a UDP client whose answer does not fit: the answer's header with TC, the question, the OPT. */
export function truncated(query: Query, answer: Buffer): Buffer {
  const opt = optFor(query);
  const flags = answer.readUInt16BE(2) | FLAG.TC;
  return Buffer.concat([encodeHeader(query.id, flags, 1, 0, 0, opt === undefined ? 0 : 1), query.questionBytes, ...(opt === undefined ? [] : [opt])]);
}

/** The query sent upstream: our id, the client's RD/CD/AD, its question bytes, its EDNS with our size and without hop-by-hop options. */
export function upstreamQuery(query: Query, id: number): Buffer {
  const edns = query.edns;
  const header = encodeHeader(id, query.flags & (FLAG.RD | FLAG.CD | FLAG.AD), 1, 0, 0, edns === undefined ? 0 : 1);
  if (edns === undefined) return Buffer.concat([header, query.questionBytes]);
  return Buffer.concat([header, query.questionBytes, encodeOpt(PROXY_UDP_SIZE, edns.dnssecOk ? DNSSEC_OK : 0, edns.options)]);
}

/** The question bytes for another name, same type and class: what a followed CNAME asks. */
export function questionFor(name: string, like: Query): Buffer {
  const typeAndClass = like.questionBytes.subarray(like.questionBytes.length - 4);
  const labels = name === '.' ? [] : name.split('.');
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'utf8');
    if (bytes.length === 0 || bytes.length > 63) throw new TypeError(`bad label in ${name}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  return Buffer.concat([...parts, Buffer.from([0]), typeAndClass]);
}
