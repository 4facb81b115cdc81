/**
 * The two messages of Istio's CreateCertificate call in protobuf wire format, by hand:
 * the agent makes one call every few hours, and a protobuf runtime (protobufjs through
 * @grpc/proto-loader) would cost it several MiB of memory for that. The fields are those
 * of proto/istio-ca.proto, which the control plane serves with @grpc/proto-loader; tests
 * check both ends agree.
 *
 *   IstioCertificateRequest  { string csr = 1; int64 validity_duration = 3; Struct metadata = 4; }
 *   IstioCertificateResponse { repeated string cert_chain = 1; }
 *
 * The client sends no `metadata` (Istio's hints go in gRPC headers: CaEndpoint.metadata).
 */

export const CA_SERVICE = 'istio.v1.auth.IstioCertificateService';
export const CREATE_CERTIFICATE_PATH = `/${CA_SERVICE}/CreateCertificate`;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

const FIELD_CSR = 1;
const FIELD_VALIDITY_DURATION = 3;
const FIELD_CERT_CHAIN = 1;

export interface CertificateRequestMessage {
  csr: string;
  /** Seconds; 0 lets the CA choose. */
  validitySeconds: number;
}

function varint(value: bigint): number[] {
  const out: number[] = [];
  let v = value;
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function tag(field: number, wire: number): number[] {
  return varint(BigInt((field << 3) | wire));
}

/** Proto3: fields at their default value (empty, 0) are not written. */
export function encodeCertificateRequest(request: CertificateRequestMessage): Buffer {
  const parts: Buffer[] = [];
  const csr = Buffer.from(request.csr, 'utf8');
  if (csr.length > 0) parts.push(Buffer.from([...tag(FIELD_CSR, WIRE_LENGTH_DELIMITED), ...varint(BigInt(csr.length))]), csr);
  const seconds = Math.max(0, Math.floor(request.validitySeconds));
  if (!Number.isSafeInteger(seconds)) throw new RangeError(`validity ${request.validitySeconds} s is not a whole number of seconds`);
  if (seconds > 0) parts.push(Buffer.from([...tag(FIELD_VALIDITY_DURATION, WIRE_VARINT), ...varint(BigInt(seconds))]));
  return Buffer.concat(parts);
}

class Reader {
  offset = 0;
  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.offset >= this.buf.length;
  }

  varint(): bigint {
    let value = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.offset >= this.buf.length) throw new RangeError('protobuf: truncated varint');
      const byte = this.buf[this.offset++]!;
      value |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw new RangeError('protobuf: varint longer than 10 bytes');
  }

  bytes(length: number): Buffer {
    if (length > this.buf.length - this.offset) throw new RangeError('protobuf: field runs past the end of the message');
    const out = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_FIXED64) this.bytes(8);
    else if (wire === WIRE_FIXED32) this.bytes(4);
    else if (wire === WIRE_LENGTH_DELIMITED) this.bytes(this.length());
    else throw new RangeError(`protobuf: unsupported wire type ${wire}`);
  }

  length(): number {
    const n = this.varint();
    if (n > BigInt(this.buf.length)) throw new RangeError('protobuf: field runs past the end of the message');
    return Number(n);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The PEM chain of a response, in order; unknown fields are skipped. Throws RangeError on malformed input. */
export function decodeCertificateResponse(message: Buffer): string[] {
  const reader = new Reader(message);
  const chain: string[] = [];
  while (!reader.done) {
    const key = reader.varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw new RangeError('protobuf: field number 0');
    if (field === FIELD_CERT_CHAIN && wire === WIRE_LENGTH_DELIMITED) {
      try {
        chain.push(UTF8.decode(reader.bytes(reader.length())));
      } catch (err) {
        if (err instanceof RangeError) throw err;
        throw new RangeError('protobuf: cert_chain is not valid UTF-8');
      }
    } else {
      reader.skip(wire);
    }
  }
  return chain;
}
