import type { Query } from './codec.ts';
import { FLAG, HEADER_BYTES, TYPE_OPT } from './wire.ts';

/** Bits of a query besides its question that change the answer, in the cache key. */
export const VARIANT = { RD: 1, CD: 2, EDNS: 4, DO: 8 } as const;

/**
 * The cache key: the asked name (lower case), the question's type and class
 * as numbers, the VARIANT bits, and the EDNS options forwarded upstream.
 * The name is followed by a NUL and the rest by nothing or `:`, so no two
 * questions share a key.
 */
export function answerKey(name: string, type: number, klass: number, variant: number, options = ''): string {
  return name + String.fromCharCode(0, type, klass, variant) + options;
}

/** The cache key of a query the full parser read: how the forwarder stores and finds answers. */
export function keyOfQuery(query: Query): string {
  const q = query.questionBytes;
  const type = q.readUInt16BE(q.length - 4);
  const klass = q.readUInt16BE(q.length - 2);
  const edns = query.edns;
  const variant = ((query.flags & FLAG.RD) !== 0 ? VARIANT.RD : 0) | ((query.flags & FLAG.CD) !== 0 ? VARIANT.CD : 0);
  if (edns === undefined) return answerKey(query.name, type, klass, variant);
  const options = edns.options.map((o) => `:${o.code}=${o.data.toString('hex')}`).join('');
  return answerKey(query.name, type, klass, variant | VARIANT.EDNS | (edns.dnssecOk ? VARIANT.DO : 0), options);
}

/**
 * The same key read straight from a query's bytes, for the cache-hit path:
 * no dns-packet decode, no objects but the result. Only the plainest queries
 * get one: one question whose name has letters, digits, `-` and `_` only,
 * nothing after it but an OPT record (version 0) whose options, if any, are
 * a cookie or padding (hop-by-hop: never forwarded, so not in the key).
 * Anything else is undefined and takes the full parser, which decides what
 * it is. So what this accepts the full parser accepts too, reading the same
 * name, type, class and EDNS, and the key is the one the forwarder stores
 * the answer under.
 */
export interface QueryKey {
  id: number;
  /** Lower case, dots between labels: what policy and attribution are given. */
  name: string;
  type: number;
  /** The cache key (answerKey). */
  key: string;
  /** Offset just past the question: the client's own question bytes are 12 to here. */
  questionEnd: number;
  /** The largest UDP answer the client takes: 512 without EDNS, its advertised size with. */
  udpLimit: number;
}

const COOKIE = 10;
const PADDING = 12;
const DO_BIT = 0x8000;
/** The name check dns-packet makes (label lengths plus one each, at most 254). */
const MAX_NAME_BYTES = 254;

/** Bytes a name may hold on this path: a-z, 0-9, `-`, `_` (upper case is folded before the check). */
const PLAIN = new Uint8Array(256);
for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789-_') PLAIN[c.charCodeAt(0)] = 1;

/** The lower-case dotted name is built here: the path is synchronous, so one buffer does. */
const scratch = Buffer.allocUnsafe(MAX_NAME_BYTES);

export function readQueryKey(buf: Buffer): QueryKey | undefined {
  const length = buf.length;
  // QR clear and opcode QUERY (byte 2's top five bits), one question, nothing but at most one additional record.
  if (length < HEADER_BYTES + 6 || (buf[2]! & 0xf8) !== 0) return undefined;
  if (buf.readUInt16BE(4) !== 1 || buf.readUInt16BE(6) !== 0 || buf.readUInt16BE(8) !== 0) return undefined;
  const additionals = buf.readUInt16BE(10);
  if (additionals > 1) return undefined;

  let at = HEADER_BYTES;
  let n = 0;
  let total = 0;
  for (;;) {
    const len = buf[at]!;
    if (len === 0) break;
    // Pointers and the reserved label types go the full way, as do names running past the end.
    total += len + 1;
    if (len > 63 || at + 1 + len >= length || total > MAX_NAME_BYTES) return undefined;
    if (n > 0) scratch[n++] = 46;
    for (let i = at + 1; i <= at + len; i++) {
      let c = buf[i]!;
      if (c >= 65 && c <= 90) c |= 0x20;
      else if (PLAIN[c] === 0) return undefined;
      scratch[n++] = c;
    }
    at += 1 + len;
  }
  // The root has no name to judge: the full path.
  if (n === 0) return undefined;
  const questionEnd = at + 5;
  if (questionEnd > length) return undefined;
  const type = buf.readUInt16BE(at + 1);
  const klass = buf.readUInt16BE(at + 3);
  const flags = buf.readUInt16BE(2);
  let variant = ((flags & FLAG.RD) !== 0 ? VARIANT.RD : 0) | ((flags & FLAG.CD) !== 0 ? VARIANT.CD : 0);
  let udpLimit = 512;
  if (additionals === 1) {
    const opt = questionEnd;
    // Root name, type OPT, version 0, and the record ends the message.
    if (opt + 11 > length || buf[opt] !== 0 || buf.readUInt16BE(opt + 1) !== TYPE_OPT || buf[opt + 6] !== 0) return undefined;
    const end = opt + 11 + buf.readUInt16BE(opt + 9);
    if (end !== length) return undefined;
    for (let o = opt + 11; o < end; ) {
      if (o + 4 > end) return undefined;
      const code = buf.readUInt16BE(o);
      if (code !== COOKIE && code !== PADDING) return undefined;
      o += 4 + buf.readUInt16BE(o + 2);
      if (o > end) return undefined;
    }
    variant |= VARIANT.EDNS | ((buf.readUInt16BE(opt + 7) & DO_BIT) !== 0 ? VARIANT.DO : 0);
    udpLimit = Math.max(512, buf.readUInt16BE(opt + 3));
  } else if (questionEnd !== length) {
    return undefined;
  }
  const name = scratch.toString('latin1', 0, n);
  return { id: buf.readUInt16BE(0), name, type, key: answerKey(name, type, klass, variant), questionEnd, udpLimit };
}
