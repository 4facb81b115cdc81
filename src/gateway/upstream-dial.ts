import { readFile } from 'node:fs/promises';
import { isIP, type Socket } from 'node:net';
import { join } from 'node:path';
import tls, { type PeerCertificate } from 'node:tls';
import { EgressdError, errorMessage } from '../core/errors.ts';
import type { Cidr } from '../core/ip-ranges.ts';
import type { TlsOrigination, Upstream } from '../policy/decision.ts';
import { uriSans } from '../tunnel/san.ts';
import { dialFirst, planDial, type Resolver } from './destination.ts';

/**
 * Connections to a destination for relayed HTTP requests, dialled the
 * gateway's way (own resolution, forbidden ranges dropped, each address
 * tried) and, when a rule asks for TLS origination, wrapped in TLS that
 * verifies the server (system roots or the rule's CA, its subjectAltNames)
 * and presents a client certificate for MUTUAL.
 */

export interface UpstreamTarget {
  host: string;
  /** Port to dial when the upstream names none (TLS origination port, targetPort, or the tunnel's port). */
  port: number;
  upstream: Upstream | undefined;
  listed: readonly Cidr[];
  tls: TlsOrigination | undefined;
}

export interface UpstreamDialOptions {
  resolver: Resolver;
  connectTimeoutMs: number;
  /** `DIR/<credentialName>/{tls.crt,tls.key,ca.crt}` for DestinationRule credentialName. */
  credentialsDir: string | undefined;
}

/** Why a connection could not be made, for the status the application gets. */
export type DialFailure = 'forbidden_address' | 'unresolvable' | 'timeout' | 'connect' | 'tls';

/** A connection to the target: dialled the gateway's way, and wrapped in TLS when the rule originates it. */
export async function dialUpstream(t: UpstreamTarget, options: UpstreamDialOptions): Promise<Socket> {
  const plan = await planDial(t.host, t.port, t.upstream, t.listed, options.resolver);
  if (!plan.ok) throw dialError(plan.reason, plan.detail);
  let dialled;
  try {
    dialled = await dialFirst(plan.targets, options.connectTimeoutMs);
  } catch (err) {
    const timedOut = err instanceof EgressdError && err.context.timedOut === true;
    throw dialError(timedOut ? 'timeout' : 'connect', errorMessage(err), err);
  }
  if (!t.tls) return dialled.socket;
  try {
    return await originate(dialled.socket, t.host, t.tls, options);
  } catch (err) {
    dialled.socket.destroy();
    throw dialError('tls', `TLS to ${t.host} (${dialled.dst}): ${errorMessage(err)}`, err);
  }
}

async function originate(socket: Socket, host: string, origination: TlsOrigination, options: UpstreamDialOptions): Promise<tls.TLSSocket> {
  const material = await credentials(origination, options.credentialsDir);
  const servername = origination.sni ?? host;
  const expected = origination.subjectAltNames ?? [];
  const secure = tls.connect({
    socket,
    ...(isIP(servername) ? {} : { servername }),
    ...material,
    ALPNProtocols: ['http/1.1'],
    rejectUnauthorized: origination.insecureSkipVerify !== true,
    checkServerIdentity: (name: string, cert: PeerCertificate) =>
      expected.length > 0 ? checkSubjectAltNames(cert, expected) : tls.checkServerIdentity(isIP(servername) ? host : name, cert),
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => secure.destroy(new Error(`handshake timed out after ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.off('error', reject);
      resolve();
    });
    secure.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  return secure;
}

/** CA and client certificate, read for each new connection so that rotated files are picked up. */
async function credentials(origination: TlsOrigination, dir: string | undefined): Promise<{ ca?: string; cert?: string; key?: string }> {
  const out: { ca?: string; cert?: string; key?: string } = {};
  if (origination.credentialName !== undefined) {
    if (dir === undefined) throw new Error(`${origination.source} names credentialName ${origination.credentialName}, but the gateway has no --credentials-dir`);
    const base = join(dir, origination.credentialName);
    if (origination.mode === 'MUTUAL') {
      out.cert = await readCredential(join(base, 'tls.crt'));
      out.key = await readCredential(join(base, 'tls.key'));
    }
    const ca = await readOptional(join(base, 'ca.crt'));
    if (ca !== undefined) out.ca = ca;
  } else if (origination.mode === 'MUTUAL') {
    throw new Error(`${origination.source} asks for MUTUAL TLS without a credentialName`);
  }
  if (origination.caCertificates !== undefined) out.ca = await readCredential(origination.caCertificates);
  return out;
}

export class DialError extends Error {
  constructor(
    readonly failure: DialFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function dialError(failure: DialFailure, message: string, cause?: unknown): DialError {
  return new DialError(failure, message, cause === undefined ? undefined : { cause });
}

async function readCredential(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
  }
}

/** Istio's `subjectAltNames`: the server certificate must carry one of them (URI exactly, DNS names as TLS matches them). */
export function checkSubjectAltNames(cert: PeerCertificate, expected: readonly string[]): Error | undefined {
  const uris = uriSans(cert.subjectaltname);
  for (const name of expected) {
    if (uris.includes(name)) return undefined;
    if (!name.includes('://') && tls.checkServerIdentity(name, cert) === undefined) return undefined;
  }
  return new Error(`server certificate (${cert.subjectaltname ?? 'no subjectAltName'}) matches none of ${expected.join(', ')}`);
}
