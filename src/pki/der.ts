/**
 * A minimal DER writer for the one structure built on the signing hot path:
 * a leaf TBSCertificate assembled from parts that are already DER (issuer
 * name, public key, extensions). Schema-driven encoders cost about 1 ms per
 * certificate; concatenating ready parts costs microseconds.
 */

function lengthBytes(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, ...items);
export const octetString = (bytes: Uint8Array): Buffer => tlv(0x04, bytes);
export const bitString = (bytes: Uint8Array): Buffer => tlv(0x03, Buffer.from([0]), bytes);
export const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);
export const BOOLEAN_TRUE = Buffer.from([0x01, 0x01, 0xff]);

/** INTEGER from unsigned big-endian bytes: minimal, and positive (a leading 0x00 where the top bit is set). */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = Buffer.from(bytes.subarray(start));
  return tlv(0x02, (trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export function objectIdentifier(oid: string): Buffer {
  const arcs = oid.split('.').map(Number);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | (n & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always in whole seconds UTC. */
export function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  const year = date.getUTCFullYear();
  return year < 2050 && year >= 1950 ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) : tlv(0x18, Buffer.from(iso, 'ascii'));
}

/** One TLV read from DER: its tag and where its content lies. */
export interface DerElement {
  tag: number;
  content: Buffer;
  /** Offset just past this element. */
  end: number;
}

/**
 * Reads one element, strictly: single-byte tags, definite minimal lengths, content
 * inside the buffer. Throws RangeError on anything else; callers turn that into a refusal.
 */
export function readElement(der: Uint8Array, offset = 0): DerElement {
  const tag = der[offset];
  const first = der[offset + 1];
  if (tag === undefined || first === undefined) throw new RangeError('DER: truncated');
  if ((tag & 0x1f) === 0x1f) throw new RangeError('DER: multi-byte tags are not used here');
  let start = offset + 2;
  let length = first;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4) throw new RangeError('DER: indefinite or oversized length');
    length = 0;
    for (let i = 0; i < count; i++) {
      const b = der[start + i];
      if (b === undefined) throw new RangeError('DER: truncated');
      if (i === 0 && b === 0) throw new RangeError('DER: non-minimal length');
      length = length * 256 + b;
    }
    if (length < 0x80) throw new RangeError('DER: non-minimal length');
    start += count;
  }
  if (start + length > der.length) throw new RangeError('DER: truncated');
  return { tag, content: Buffer.from(der.buffer, der.byteOffset + start, length), end: start + length };
}

/** The elements inside a constructed element's content, in order. */
export function readChildren(content: Buffer): DerElement[] {
  const out: DerElement[] = [];
  for (let offset = 0; offset < content.length; ) {
    const el = readElement(content, offset);
    out.push(el);
    offset = el.end;
  }
  return out;
}

export function expectTag(el: DerElement | undefined, tag: number, what: string): DerElement {
  if (!el || el.tag !== tag) throw new RangeError(`DER: ${what} expected`);
  return el;
}

export function decodeObjectIdentifier(content: Buffer): string {
  if (content.length === 0 || (content[content.length - 1]! & 0x80) !== 0) throw new RangeError('DER: bad OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (const b of content) {
    if (value === 0 && b === 0x80) throw new RangeError('DER: non-minimal OBJECT IDENTIFIER');
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  const head = arcs.shift()!;
  const top = head < 40 ? 0 : head < 80 ? 1 : 2;
  return [top, head - 40 * top, ...arcs].join('.');
}
