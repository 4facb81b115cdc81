/**
 * A pure, incremental TLS ClientHello reader: give it every byte received so
 * far, it says whether more are needed, whether this is TLS at all, or what
 * the hello names (SNI, ALPN). The hello may be fragmented over several TLS
 * records and each record over several TCP segments, so the caller re-parses
 * the growing buffer; nothing here ever throws on input.
 */

export type ClientHelloResult =
  /** Every prefix of a valid hello: wait for more bytes. */
  | { status: 'incomplete' }
  /** The bytes do not start a TLS handshake record. */
  | { status: 'not_tls' }
  /** They start one, but what follows is not a valid ClientHello. */
  | { status: 'malformed'; reason: string }
  | { status: 'complete'; sni: string | null; alpn: string[] | null; /** Bytes of the records that carried the hello. */ length: number };

const RECORD_HEADER = 5;
const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
/** RFC 8446 5.1: a record's plaintext is at most 2^14 bytes. */
const MAX_RECORD = 1 << 14;
/** Far above any real hello (post-quantum key shares stay under 4 KiB); bounds what one connection can make us buffer. */
export const MAX_CLIENT_HELLO = 64 * 1024;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const SNI_HOST_NAME = 0;
/** Letters, digits, hyphen, underscore (seen in the wild), dots; RFC 6066 forbids a trailing dot. */
const SNI_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

class Malformed extends Error {}

/** Reads big-endian fields, failing as Malformed past the end of its slice. */
class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  u8(what: string): number {
    return this.bytes(1, what)[0]!;
  }
  u16(what: string): number {
    return this.bytes(2, what).readUInt16BE(0);
  }
  bytes(n: number, what: string): Buffer {
    if (n > this.remaining) throw new Malformed(`${what} overruns its enclosing field`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  rest(): Buffer {
    return this.bytes(this.remaining, 'rest');
  }
  /** A length-prefixed sub-slice (1 or 2 length bytes). */
  vector(lengthBytes: 1 | 2, what: string): Reader {
    const n = lengthBytes === 1 ? this.u8(what) : this.u16(what);
    return new Reader(this.bytes(n, what));
  }
}

export function parseClientHello(data: Buffer): ClientHelloResult {
  if (data.length === 0) return { status: 'incomplete' };
  if (data[0] !== CONTENT_HANDSHAKE) return { status: 'not_tls' };
  if (data.length >= 2 && data[1] !== 3) return { status: 'not_tls' };
  const gathered = gatherHandshake(data);
  if (gathered.status !== 'complete') return gathered;
  try {
    const { sni, alpn } = parseHelloBody(gathered.body);
    return { status: 'complete', sni, alpn, length: gathered.length };
  } catch (err) {
    if (err instanceof Malformed) return { status: 'malformed', reason: err.message };
    throw err;
  }
}

type Gathered = { status: 'incomplete' } | { status: 'malformed'; reason: string } | { status: 'complete'; body: Buffer; length: number };

/** Joins the handshake fragments of consecutive records until the whole ClientHello message is there. */
function gatherHandshake(data: Buffer): Gathered {
  const fragments: Buffer[] = [];
  let have = 0;
  let need: number | undefined;
  let offset = 0;
  for (;;) {
    if (data.length - offset < RECORD_HEADER) {
      if (data.length > offset && data[offset] !== CONTENT_HANDSHAKE) return malformed('a non-handshake record interrupts the ClientHello');
      return { status: 'incomplete' };
    }
    const type = data[offset]!;
    const major = data[offset + 1]!;
    const minor = data[offset + 2]!;
    const length = data.readUInt16BE(offset + 3);
    if (type !== CONTENT_HANDSHAKE) return malformed('a non-handshake record interrupts the ClientHello');
    if (major !== 3 || minor > 4) return malformed(`unknown record version ${major}.${minor}`);
    if (length === 0) return malformed('empty handshake record');
    if (length > MAX_RECORD) return malformed(`record of ${length} bytes exceeds 2^14`);
    const end = offset + RECORD_HEADER + length;
    fragments.push(data.subarray(offset + RECORD_HEADER, Math.min(end, data.length)));
    have += Math.min(end, data.length) - offset - RECORD_HEADER;
    if (need === undefined && have >= 4) {
      const head = Buffer.concat(fragments).subarray(0, 4);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return malformed(`first handshake message is type ${head[0]}, not ClientHello`);
      need = 4 + head.readUIntBE(1, 3);
      if (need > MAX_CLIENT_HELLO) return malformed(`ClientHello of ${need} bytes exceeds ${MAX_CLIENT_HELLO}`);
    }
    if (end > data.length) return { status: 'incomplete' };
    if (need !== undefined && have >= need) {
      // Another handshake message sharing the last record would be a protocol error for a first flight.
      if (have > need) return malformed('bytes after the ClientHello in its record');
      return { status: 'complete', body: Buffer.concat(fragments).subarray(4, need), length: end };
    }
    offset = end;
  }
}

function parseHelloBody(body: Buffer): { sni: string | null; alpn: string[] | null } {
  const r = new Reader(body);
  const major = r.u8('legacy_version');
  r.u8('legacy_version');
  if (major !== 3) throw new Malformed(`ClientHello version ${major}.x is not TLS`);
  r.bytes(32, 'random');
  if (r.vector(1, 'session_id').remaining > 32) throw new Malformed('session_id longer than 32 bytes');
  const suites = r.vector(2, 'cipher_suites');
  if (suites.remaining === 0 || suites.remaining % 2 !== 0) throw new Malformed('cipher_suites length is zero or odd');
  if (r.vector(1, 'compression_methods').remaining === 0) throw new Malformed('no compression methods');
  // SSL 3.0 / TLS 1.0 hellos may end here, without extensions.
  if (r.remaining === 0) return { sni: null, alpn: null };
  const extensions = r.vector(2, 'extensions');
  if (r.remaining !== 0) throw new Malformed('bytes after the extensions');
  let sni: string | null = null;
  let alpn: string[] | null = null;
  const seen = new Set<number>();
  while (extensions.remaining > 0) {
    const type = extensions.u16('extension type');
    const ext = extensions.vector(2, 'extension');
    if (seen.has(type)) throw new Malformed(`extension ${type} appears twice`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) sni = parseServerName(ext);
    else if (type === EXT_ALPN) alpn = parseAlpn(ext);
  }
  return { sni, alpn };
}

function parseServerName(ext: Reader): string | null {
  const list = ext.vector(2, 'server_name_list');
  if (ext.remaining !== 0) throw new Malformed('bytes after server_name_list');
  let name: string | null = null;
  while (list.remaining > 0) {
    const type = list.u8('server name type');
    const value = list.vector(2, 'server name').rest();
    if (type !== SNI_HOST_NAME) continue;
    // RFC 6066 3: at most one name of each type.
    if (name !== null) throw new Malformed('two host names in server_name');
    const text = value.toString('latin1');
    if (!SNI_PATTERN.test(text) || text.length > 253) throw new Malformed('server_name is not a valid DNS name');
    name = text;
  }
  return name;
}

function parseAlpn(ext: Reader): string[] {
  const list = ext.vector(2, 'ALPN protocol list');
  if (ext.remaining !== 0) throw new Malformed('bytes after the ALPN protocol list');
  const protocols: string[] = [];
  while (list.remaining > 0) {
    const p = list.vector(1, 'ALPN protocol');
    if (p.remaining === 0) throw new Malformed('empty ALPN protocol name');
    protocols.push(p.rest().toString('latin1'));
  }
  if (protocols.length === 0) throw new Malformed('empty ALPN protocol list');
  return protocols;
}

function malformed(reason: string): { status: 'malformed'; reason: string } {
  return { status: 'malformed', reason };
}
