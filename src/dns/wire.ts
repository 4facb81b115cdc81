/**
 * Byte-level facts about a DNS message that dns-packet's objects do not
 * keep: where the question ends, where each TTL and the OPT record sit.
 * Upstream answers are relayed as bytes (never re-encoded, so records
 * dns-packet does not know pass unchanged), and cached answers are aged by
 * rewriting their TTLs in place.
 */

export const HEADER_BYTES = 12;
export const TYPE_OPT = 41;

/** Header flag bits (second 16-bit word). */
export const FLAG = {
  QR: 0x8000,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  AD: 0x0020,
  CD: 0x0010,
} as const;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface MessageLayout {
  /** Offset just past the question section. */
  questionEnd: number;
  /** Offsets of the 32-bit TTL of every answer, authority and additional record except OPT. */
  ttlOffsets: readonly number[];
  /** Offset where the OPT record starts, or -1. */
  opt: number;
  /** Offset just past the last record. */
  end: number;
}

export class WireError extends Error {}

/** Offset just past the name at `offset` (a pointer ends the name; it is not followed). */
export function skipName(buf: Buffer, offset: number): number {
  for (let labels = 0; labels < 128; labels++) {
    if (offset >= buf.length) throw new WireError('name runs past the end');
    const len = buf[offset]!;
    if (len === 0) return offset + 1;
    if ((len & 0xc0) === 0xc0) {
      if (offset + 2 > buf.length) throw new WireError('pointer runs past the end');
      return offset + 2;
    }
    if ((len & 0xc0) !== 0) throw new WireError('bad label type');
    offset += 1 + len;
  }
  throw new WireError('too many labels');
}

/** Walks the whole message; throws WireError on anything that does not fit. */
export function scanMessage(buf: Buffer): MessageLayout {
  if (buf.length < HEADER_BYTES) throw new WireError('shorter than a header');
  const qd = buf.readUInt16BE(4);
  const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  let offset = HEADER_BYTES;
  for (let i = 0; i < qd; i++) {
    offset = skipName(buf, offset) + 4;
    if (offset > buf.length) throw new WireError('question runs past the end');
  }
  const questionEnd = offset;
  const ttlOffsets: number[] = [];
  let opt = -1;
  for (let i = 0; i < records; i++) {
    const start = offset;
    offset = skipName(buf, offset);
    if (offset + 10 > buf.length) throw new WireError('record header runs past the end');
    if (buf.readUInt16BE(offset) === TYPE_OPT) {
      if (opt !== -1) throw new WireError('more than one OPT record');
      opt = start;
    } else {
      ttlOffsets.push(offset + 4);
    }
    offset += 10 + buf.readUInt16BE(offset + 8);
    if (offset > buf.length) throw new WireError('record data runs past the end');
  }
  return { questionEnd, ttlOffsets, opt, end: offset };
}

/**
 * A copy of a cached message for one client: its id, its question bytes
 * (same name, maybe other letter case), every TTL reduced by `elapsed`
 * seconds.
 */
export function agedCopy(cached: Buffer, layout: MessageLayout, id: number, question: Buffer, elapsed: number): Buffer {
  const out = Buffer.allocUnsafe(cached.length);
  cached.copy(out);
  out.writeUInt16BE(id, 0);
  if (question.length === layout.questionEnd - HEADER_BYTES) question.copy(out, HEADER_BYTES);
  if (elapsed > 0) {
    for (const at of layout.ttlOffsets) {
      const ttl = cached.readUInt32BE(at);
      out.writeUInt32BE(ttl > elapsed ? ttl - elapsed : 0, at);
    }
  }
  return out;
}

/** The OPT record's fields, read from its offset. */
export interface OptRecord {
  udpSize: number;
  extendedRcode: number;
  version: number;
  /** DO bit and the rest of the EDNS flags. */
  flags: number;
  /** The options as raw TLVs (code, length, data), in order. */
  options: readonly { code: number; data: Buffer }[];
}

export function readOpt(buf: Buffer, opt: number): OptRecord {
  const at = skipName(buf, opt);
  const rdlength = buf.readUInt16BE(at + 8);
  const options: { code: number; data: Buffer }[] = [];
  let offset = at + 10;
  const end = offset + rdlength;
  while (offset < end) {
    if (offset + 4 > end) throw new WireError('EDNS option header runs past the OPT record');
    const len = buf.readUInt16BE(offset + 2);
    if (offset + 4 + len > end) throw new WireError('EDNS option runs past the OPT record');
    options.push({ code: buf.readUInt16BE(offset), data: buf.subarray(offset + 4, offset + 4 + len) });
    offset += 4 + len;
  }
  return { udpSize: buf.readUInt16BE(at + 2), extendedRcode: buf[at + 4]!, version: buf[at + 5]!, flags: buf.readUInt16BE(at + 6), options };
}

/** An OPT record: root name, our UDP size, extended rcode bits, version 0, flags, the options as TLVs. */
export function encodeOpt(udpSize: number, flags: number, options: readonly { code: number; data: Buffer }[], extendedRcode = 0): Buffer {
  const rdlength = options.reduce((n, o) => n + 4 + o.data.length, 0);
  const out = Buffer.alloc(11 + rdlength);
  out.writeUInt16BE(TYPE_OPT, 1);
  out.writeUInt16BE(udpSize, 3);
  out[5] = extendedRcode;
  out.writeUInt16BE(flags, 7);
  out.writeUInt16BE(rdlength, 9);
  let offset = 11;
  for (const o of options) {
    out.writeUInt16BE(o.code, offset);
    out.writeUInt16BE(o.data.length, offset + 2);
    o.data.copy(out, offset + 4);
    offset += 4 + o.data.length;
  }
  return out;
}

/** A header: id, flags word, then the four counts. */
export function encodeHeader(id: number, flags: number, qd: number, an: number, ns: number, ar: number): Buffer {
  const out = Buffer.alloc(HEADER_BYTES);
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(flags, 2);
  out.writeUInt16BE(qd, 4);
  out.writeUInt16BE(an, 6);
  out.writeUInt16BE(ns, 8);
  out.writeUInt16BE(ar, 10);
  return out;
}
