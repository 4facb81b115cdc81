import { EgressdError } from '../core/errors.ts';

/** PEM text of one DER object, 64-column base64 as RFC 7468 writes it. */
export function pemEncode(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every block of the given label in a PEM bundle, as DER, in order. Anything else in the text is ignored. */
export function pemDecodeAll(text: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1] !== label) continue;
    const body = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length === 0) {
      throw new EgressdError('EGRESSD_ERR_PKI', `a ${label} PEM block is not valid base64`);
    }
    out.push(Buffer.from(body, 'base64'));
  }
  return out;
}

/** The certificates of a PEM bundle as separate PEM strings (one per certificate). */
export function splitCertificates(text: string): string[] {
  return pemDecodeAll(text, 'CERTIFICATE').map((der) => pemEncode('CERTIFICATE', der));
}
