import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { EgressdError } from './errors.ts';
import { socketDescriptor } from './net.ts';

/**
 * The destination a connection was addressed to before an iptables REDIRECT
 * rewrote it to the agent's port, read from conntrack with
 * getsockopt(SO_ORIGINAL_DST). Node has no API for it: egressd's own addon
 * (original-dst.c beside this file, built by `npm ci`) calls it on the
 * socket's file descriptor.
 */
export interface OriginalDst {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

// Linux values: SOL_IP, SOL_IPV6.
const SOL_IP = 0;
const SOL_IPV6 = 41;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCKADDR_IN_SIZE = 16;
const SOCKADDR_IN6_SIZE = 28;

/** The addon's one function: the sockaddr's length written into `buffer`, or -errno. */
type OriginalDstCall = (fd: number, level: number, buffer: Buffer) => number;

/**
 * Where the addon is: package.json's `imports` maps this name to build/Release/, so that the
 * sources (src/core/), the bundle (dist/chunks/) and private builds (dist/run-<pid>/chunks/) all
 * find it through the package root.
 */
const ADDON = '#original-dst-addon';

const HINTS: Record<string, string> = {
  ENOENT: ': the connection was not redirected by iptables',
  ENOPROTOOPT: ': connection tracking is not active in this network namespace',
};

let addonCall: OriginalDstCall | undefined;

/** Loads the addon on first use: explicit-proxy mode and egressctl never need it. */
function originalDstCall(): OriginalDstCall {
  if (!addonCall) {
    try {
      addonCall = (createRequire(import.meta.url)(ADDON) as { originalDst: OriginalDstCall }).originalDst;
    } catch (err) {
      throw new EgressdError('EGRESSD_ERR_ORIGINAL_DST', `egressd's native addon (${ADDON}) does not load: ${(err as Error).message}; \`npm ci\` or \`npm rebuild\` builds it (needs python3, make and a C compiler)`, {
        cause: err,
      });
    }
  }
  return addonCall;
}

/** Decodes a `struct sockaddr_in` or `struct sockaddr_in6` as the kernel fills it. */
export function parseSockaddr(buf: Buffer, length: number): OriginalDst {
  if (length < 2) throw new EgressdError('EGRESSD_ERR_ORIGINAL_DST', `sockaddr too short (${length} bytes)`);
  const family = buf.readUInt16LE(0);
  if (family === AF_INET && length >= SOCKADDR_IN_SIZE) {
    return { address: [...buf.subarray(4, 8)].join('.'), port: buf.readUInt16BE(2), family: 'IPv4' };
  }
  if (family === AF_INET6 && length >= SOCKADDR_IN6_SIZE) {
    const groups: string[] = [];
    for (let i = 8; i < 24; i += 2) groups.push(buf.readUInt16BE(i).toString(16));
    return { address: compressIpv6(groups), port: buf.readUInt16BE(2), family: 'IPv6' };
  }
  throw new EgressdError('EGRESSD_ERR_ORIGINAL_DST', `unexpected sockaddr family ${family} (${length} bytes)`, { context: { family, length } });
}

/** RFC 5952 text: the longest run (>1) of zero groups becomes `::`. */
function compressIpv6(groups: string[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

function socketFd(socket: Socket): number {
  const fd = socketDescriptor(socket);
  if (fd === undefined) throw new EgressdError('EGRESSD_ERR_ORIGINAL_DST', 'socket has no file descriptor (closed, or not a kernel TCP socket)');
  return fd;
}

/**
 * Reads the pre-REDIRECT destination of an accepted socket. IPv4 connections
 * (including IPv4-mapped ones on a dual-stack listener) are asked at SOL_IP,
 * IPv6 ones at SOL_IPV6. Throws EGRESSD_ERR_ORIGINAL_DST when the connection
 * was not redirected (conntrack knows no NAT for it: ENOENT) or the socket is gone.
 */
export function getOriginalDst(socket: Socket): OriginalDst {
  const fd = socketFd(socket);
  const local = socket.localAddress ?? '';
  const v6 = local.includes(':') && !local.toLowerCase().startsWith('::ffff:');
  const buf = Buffer.alloc(v6 ? SOCKADDR_IN6_SIZE : SOCKADDR_IN_SIZE);
  const length = originalDstCall()(fd, v6 ? SOL_IPV6 : SOL_IP, buf);
  if (length < 0) {
    const name = getSystemErrorName(length);
    const hint = HINTS[name] ?? '';
    throw new EgressdError('EGRESSD_ERR_ORIGINAL_DST', `getsockopt(SO_ORIGINAL_DST) failed with ${name}${hint}`, {
      context: { errno: name, local: socket.localAddress, remote: socket.remoteAddress },
    });
  }
  return parseSockaddr(buf, length);
}
