/** A DNS client for tests: real UDP and TCP sockets, waits bounded by a deadline, never by sleeping. */
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket, type RecordType } from 'dns-packet';
import type { Registry } from 'prom-client';

const WAIT_MS = 5000;
let nextId = 1;

export interface QueryOptions {
  /** Send an OPT record with this UDP size; none when undefined. */
  udpSize?: number;
  id?: number;
}

export function query(name: string, type: RecordType | 'UNKNOWN_65', options: QueryOptions = {}): Buffer {
  return dnsPacket.encode({
    id: options.id ?? (nextId = (nextId % 65535) + 1),
    type: 'query',
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as RecordType }],
    additionals: options.udpSize === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: options.udpSize } as Answer],
  });
}

/**
 * Sends each packet in order from one socket and resolves with the first
 * reply (raw). Replies arrive in the order the proxy produced them, so the
 * first reply tells which packet, if any, was answered first.
 */
export function udpExchange(port: number, packets: Buffer[], host = '127.0.0.1'): Promise<Buffer> {
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no UDP answer from ${host}:${port} within ${WAIT_MS} ms`)), WAIT_MS);
    socket.once('message', (msg) => {
      clearTimeout(timer);
      resolve(msg);
    });
    socket.once('error', reject);
    for (const p of packets) socket.send(p, port, host);
  }).finally(() => socket.close());
}

export async function udp(port: number, packet: Buffer, host = '127.0.0.1'): Promise<DecodedPacket> {
  return dnsPacket.decode(await udpExchange(port, [packet], host));
}

/** Writes every packet, framed, in one write; resolves with `expect` framed replies, raw. */
export function tcpExchange(port: number, packets: Buffer[], expect = packets.length, host = '127.0.0.1'): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const replies: Buffer[] = [];
    let pending = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`got ${replies.length} of ${expect} TCP answers within ${WAIT_MS} ms`));
    }, WAIT_MS);
    socket.on('error', reject);
    socket.on('connect', () => socket.write(Buffer.concat(packets.map((p) => Buffer.concat([Buffer.from([p.length >> 8, p.length & 0xff]), p])))));
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        replies.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
      }
      if (replies.length >= expect) {
        clearTimeout(timer);
        socket.destroy();
        resolve(replies);
      }
    });
  });
}

export async function tcp(port: number, packet: Buffer): Promise<DecodedPacket> {
  return dnsPacket.decode((await tcpExchange(port, [packet]))[0]!);
}

export function rcodeOf(packet: DecodedPacket): number {
  return (packet.flags ?? 0) & 0xf;
}

export function dataOf(packet: DecodedPacket, type?: string): unknown[] {
  return (packet.answers ?? []).filter((a) => type === undefined || a.type === type).map((a) => (a as { data: unknown }).data);
}

/** A counter's value for the labels given (0 when the series does not exist yet). */
export async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const found = registry.getSingleMetric(name);
  if (found === undefined) throw new Error(`no metric ${name}`);
  const values = (await found.get()).values;
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .filter((v) => (v as { metricName?: string }).metricName === undefined || (v as { metricName?: string }).metricName === name || (v as { metricName?: string }).metricName === `${name}_count`)
    .reduce((sum, v) => sum + v.value, 0);
}
