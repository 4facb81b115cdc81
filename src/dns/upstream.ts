import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { EgressdError } from '../core/errors.ts';
import { parseIp } from '../core/ip-ranges.ts';
import { formatHostPort, type HostPort } from '../core/net.ts';
import { ipAsIs } from './address.ts';
import { TcpFramer, frame } from './tcp-framing.ts';
import { FLAG, HEADER_BYTES, RCODE, skipName } from './wire.ts';

/**
 * Asks the pod's nameservers: over UDP with a fresh random id, in
 * resolv.conf order, `attempts` rounds, each server given `timeoutMs`; an
 * answer with TC is asked again over TCP of the same server. A reply counts
 * only if it comes from the server asked, carries the id and echoes the
 * question; SERVFAIL, REFUSED and NOTIMP move on to the next server, as
 * glibc does, and are returned when no server does better.
 *
 * Each UDP query goes out of a socket of its own (RFC 5452): a forged answer
 * must then guess the kernel's random ephemeral port as well as the 16-bit
 * id, not the id alone, and a poisoned cache entry would name the
 * destinations of later connections. The socket is connected to the server,
 * so the kernel drops datagrams from anybody else before we see them.
 */

export type Transport = 'udp' | 'tcp';

export interface UpstreamReply {
  bytes: Buffer;
  transport: Transport;
  /** `address:port` of the server that answered. */
  server: string;
}

export interface UpstreamOptions {
  servers: readonly HostPort[];
  timeoutMs: number;
  attempts: number;
  /** Seconds one exchange took, by transport; for the latency histogram. */
  observe?: (seconds: number, transport: Transport) => void;
}

const RETRYABLE = new Set<number>([RCODE.SERVFAIL, RCODE.REFUSED, RCODE.NOTIMP]);

/** Upstreams are IP addresses (config and resolv.conf): connect without a tick of dns.lookup. */
const LOOKUP_V4 = ipAsIs(4);
const LOOKUP_V6 = ipAsIs(6);

export class Upstreams {
  readonly #options: UpstreamOptions;
  /** Settles each UDP query in flight (with no answer), for close(). */
  readonly #udpInFlight = new Set<() => void>();
  readonly #tcp = new Set<net.Socket>();
  #closed = false;

  constructor(options: UpstreamOptions) {
    this.#options = options;
  }

  /** Asks until a server answers; `buildQuery` makes the query with the id to use. Throws EGRESSD_ERR_UPSTREAM when none did. */
  async query(buildQuery: (id: number) => Buffer): Promise<UpstreamReply> {
    let fallback: UpstreamReply | undefined;
    for (let attempt = 0; attempt < this.#options.attempts; attempt++) {
      for (const server of this.#options.servers) {
        if (this.#closed) throw closedError();
        const reply = await this.#exchange(server, buildQuery);
        if (reply === undefined) continue;
        if (!RETRYABLE.has(reply.bytes[3]! & 0xf)) return reply;
        fallback ??= reply;
      }
      if (fallback !== undefined) return fallback;
    }
    throw new EgressdError('EGRESSD_ERR_UPSTREAM', `no answer from ${this.#options.servers.map((s) => formatHostPort(s.host, s.port)).join(', ')}`, {
      context: { servers: this.#options.servers.length, attempts: this.#options.attempts },
    });
  }

  async #exchange(server: HostPort, buildQuery: (id: number) => Buffer): Promise<UpstreamReply | undefined> {
    const started = performance.now();
    const udp = await this.#udp(server, buildQuery);
    this.#options.observe?.((performance.now() - started) / 1000, 'udp');
    if (udp === undefined) return undefined;
    const name = formatHostPort(server.host, server.port);
    if ((udp.readUInt16BE(2) & FLAG.TC) === 0) return { bytes: udp, transport: 'udp', server: name };
    const retried = performance.now();
    const tcp = await this.#tcpExchange(server, buildQuery(randomInt(65536)));
    this.#options.observe?.((performance.now() - retried) / 1000, 'tcp');
    return tcp === undefined ? undefined : { bytes: tcp, transport: 'tcp', server: name };
  }

  #udp(server: HostPort, buildQuery: (id: number) => Buffer): Promise<Buffer | undefined> {
    const id = randomInt(65536);
    const query = buildQuery(id);
    const question = questionOf(query);
    return new Promise((resolve) => {
      const ipv6 = net.isIPv6(server.host);
      const socket = dgram.createSocket({ type: ipv6 ? 'udp6' : 'udp4', lookup: ipv6 ? LOOKUP_V6 : LOOKUP_V4 });
      let settled = false;
      const settle = (reply: Buffer | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#udpInFlight.delete(abandon);
        socket.close();
        resolve(reply);
      };
      const abandon = (): void => settle(undefined);
      const timer = setTimeout(abandon, this.#options.timeoutMs);
      this.#udpInFlight.add(abandon);
      // ECONNREFUSED (the server's ICMP port unreachable) on a connected socket: no answer, try the next server.
      socket.on('error', abandon);
      socket.on('message', (msg, rinfo) => {
        if (isAnswer(msg, id, question) && rinfo.port === server.port && sameAddress(rinfo.address, server.host)) settle(msg);
      });
      socket.connect(server.port, server.host, () => {
        if (!settled) socket.send(query, (err) => err && abandon());
      });
    });
  }

  #tcpExchange(server: HostPort, query: Buffer): Promise<Buffer | undefined> {
    const id = query.readUInt16BE(0);
    const question = questionOf(query);
    return new Promise((resolve) => {
      const socket = net.connect({ host: server.host, port: server.port });
      this.#tcp.add(socket);
      const framer = new TcpFramer();
      const finish = (reply: Buffer | undefined): void => {
        this.#tcp.delete(socket);
        socket.destroy();
        resolve(reply);
      };
      socket.setTimeout(this.#options.timeoutMs, () => finish(undefined));
      socket.on('error', () => finish(undefined));
      socket.on('close', () => finish(undefined));
      socket.on('connect', () => socket.write(frame(query)));
      socket.on('data', (chunk: Buffer) => {
        for (const msg of framer.push(chunk)) if (isAnswer(msg, id, question)) return finish(msg);
      });
    });
  }

  close(): void {
    this.#closed = true;
    for (const abandon of [...this.#udpInFlight]) abandon();
    for (const socket of this.#tcp) socket.destroy();
  }
}

function closedError(): EgressdError {
  return new EgressdError('EGRESSD_ERR_UPSTREAM', 'the DNS proxy is closing');
}

/** A response with our id that echoes our question (a message that cannot be read is none). */
function isAnswer(msg: Buffer, id: number, question: Buffer): boolean {
  if (msg.length < HEADER_BYTES || (msg[2]! & 0x80) === 0 || msg.readUInt16BE(0) !== id) return false;
  try {
    return sameQuestion(questionOf(msg), question);
  } catch {
    return false;
  }
}

/** The first question's bytes; throws on a message too short to have one. */
function questionOf(msg: Buffer): Buffer {
  if (msg.readUInt16BE(4) < 1) throw new RangeError('no question');
  const end = skipName(msg, HEADER_BYTES) + 4;
  if (end > msg.length) throw new RangeError('question runs past the end');
  return msg.subarray(HEADER_BYTES, end);
}

/** Same name (letter case aside: some servers lower it), same type and class. */
function sameQuestion(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  const nameEnd = a.length - 4;
  for (let i = 0; i < a.length; i++) {
    let x = a[i]!;
    let y = b[i]!;
    if (i < nameEnd) {
      if (x >= 0x41 && x <= 0x5a) x |= 0x20;
      if (y >= 0x41 && y <= 0x5a) y |= 0x20;
    }
    if (x !== y) return false;
  }
  return true;
}

function sameAddress(seen: string, asked: string): boolean {
  if (seen === asked) return true;
  const a = parseIp(seen);
  const b = parseIp(asked);
  return a !== undefined && b !== undefined && a.family === b.family && a.value === b.value;
}
