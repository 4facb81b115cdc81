import { sign, verify, type KeyObject } from 'node:crypto';

/**
 * Compact JWS with ES256 (RFC 7515/7518), the form of Kubernetes service-account
 * tokens. Decoding never throws: a bad token is a result with a reason.
 */
export interface JwtHeader {
  alg: string;
  kid?: string;
  typ?: string;
}

export type DecodedJwt =
  | { ok: true; header: JwtHeader; payload: Record<string, unknown>; signingInput: Buffer; signature: Buffer }
  | { ok: false; message: string };

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');
const B64URL = /^[A-Za-z0-9_-]*$/;

export function signEs256(payload: Record<string, unknown>, key: KeyObject, kid: string): string {
  const signingInput = `${b64url(JSON.stringify({ alg: 'ES256', kid, typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}`;
  // JWS wants the raw r||s form, not DER.
  const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${b64url(signature)}`;
}

function jsonObject(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL.test(p))) return { ok: false, message: 'not a JWT (three base64url parts)' };
  const header = jsonObject(parts[0]!);
  const payload = jsonObject(parts[1]!);
  if (!header || typeof header.alg !== 'string') return { ok: false, message: 'JWT header is not a JSON object with "alg"' };
  if (!payload) return { ok: false, message: 'JWT payload is not a JSON object' };
  return {
    ok: true,
    header: { alg: header.alg, ...(typeof header.kid === 'string' ? { kid: header.kid } : {}) },
    payload,
    signingInput: Buffer.from(`${parts[0]}.${parts[1]}`),
    signature: Buffer.from(parts[2]!, 'base64url'),
  };
}

export function verifyEs256(jwt: { signingInput: Buffer; signature: Buffer }, key: KeyObject): boolean {
  if (jwt.signature.length !== 64) return false;
  try {
    return verify('sha256', jwt.signingInput, { key, dsaEncoding: 'ieee-p1363' }, jwt.signature);
  } catch {
    return false;
  }
}
